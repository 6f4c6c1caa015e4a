-- A loaded file version whose rows a newer version of the same file replaced is 'replaced':
-- kept for the record, no longer counted as in its table, so a file restored to that
-- version is loaded again.
ALTER TABLE ferry.onedrive_ingest DROP CONSTRAINT onedrive_ingest_status_check;
ALTER TABLE ferry.onedrive_ingest ADD CONSTRAINT onedrive_ingest_status_check
    CHECK (status IN ('loaded', 'failed', 'skipped', 'deleted', 'renamed', 'replaced'));

UPDATE ferry.onedrive_ingest old SET status = 'replaced'
WHERE old.status = 'loaded'
  AND EXISTS (SELECT 1 FROM ferry.onedrive_ingest newer
              WHERE newer.source = old.source AND newer.item_id = old.item_id
                AND newer.target_table = old.target_table AND newer.status = 'loaded'
                AND newer.id > old.id);
