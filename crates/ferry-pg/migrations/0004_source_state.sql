-- What a source keeps with its cursor (OneDrive: its compact tree of the drive, since delta
-- items carry no paths). Saved in the same transaction as the cursor.
ALTER TABLE ferry.sync_cursors ADD COLUMN state jsonb;
