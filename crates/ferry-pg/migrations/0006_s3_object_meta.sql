-- What the S3 gateway keeps about objects in OneDrive and OneDrive does not (MD5 entity tag,
-- content type, user metadata), when it runs with `--metadata postgres`: every gateway
-- replica over the same drive reads and writes the same records. A record holds for one
-- content version (cTag) of one drive item; a file edited in OneDrive no longer matches it.
CREATE TABLE ferry.s3_object_meta (
    scope       text NOT NULL,          -- the drive, as configured (e.g. /users/{id}/drive)
    item_id     text NOT NULL,
    version     text NOT NULL,
    etag        text NOT NULL,
    attrs       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, item_id)
);

ALTER TABLE ferry.s3_object_meta ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ferry.s3_object_meta TO service_role;
    END IF;
END
$$;
