-- ferry's operational tables: sync cursors, runs, ingested files, rejects and the sync
-- queue. They live in their own schema; every table has row-level security on (no policy:
-- only the owner and roles that bypass RLS, like Supabase's service_role, see rows).

CREATE SCHEMA IF NOT EXISTS ferry;

-- Where each source's last completed sync stopped (a Graph delta link, or a local
-- folder's snapshot id). Advanced in the same transaction as the data it covers.
CREATE TABLE ferry.sync_cursors (
    source      text PRIMARY KEY,
    cursor      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per sync run.
CREATE TABLE ferry.etl_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text NOT NULL,
    trigger        text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'queue')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    status         text NOT NULL DEFAULT 'running'
                   CHECK (status IN ('running', 'succeeded', 'partial', 'failed')),
    files_seen     integer NOT NULL DEFAULT 0,
    files_loaded   integer NOT NULL DEFAULT 0,
    files_skipped  integer NOT NULL DEFAULT 0,
    files_failed   integer NOT NULL DEFAULT 0,
    rows_loaded    bigint NOT NULL DEFAULT 0,
    rows_rejected  bigint NOT NULL DEFAULT 0,
    bytes          bigint NOT NULL DEFAULT 0,
    duration_ms    bigint,
    cursor_before  text,
    cursor_after   text,
    error          text,
    manifest       jsonb
);
CREATE INDEX etl_runs_source_started ON ferry.etl_runs (source, started_at DESC);

-- One row per version of a file the sync handled (loaded, failed or skipped), and one per
-- rename or deletion it saw. A version is loaded once into a table: (source, item_id, etag,
-- target_table) is unique among loaded, failed and skipped rows.
CREATE TABLE ferry.onedrive_ingest (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint NOT NULL REFERENCES ferry.etl_runs (id),
    source          text NOT NULL,
    item_id         text NOT NULL,
    path            text NOT NULL,
    dataset         text,
    version         text,
    etag            text NOT NULL,
    size            bigint,
    quick_xor_hash  text,
    sha256          text,
    format          text,
    detected_schema jsonb,
    rows_loaded     bigint NOT NULL DEFAULT 0,
    rows_rejected   bigint NOT NULL DEFAULT 0,
    target_table    text,
    status          text NOT NULL
                    CHECK (status IN ('loaded', 'failed', 'skipped', 'deleted', 'renamed')),
    error           text,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX onedrive_ingest_version
    ON ferry.onedrive_ingest (source, item_id, etag, coalesce(target_table, ''))
    WHERE status IN ('loaded', 'failed', 'skipped');
CREATE INDEX onedrive_ingest_item ON ferry.onedrive_ingest (source, item_id, id DESC);

-- Rows a loader could not take, with where they came from and why.
CREATE TABLE ferry.etl_rejects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES ferry.etl_runs (id),
    source      text NOT NULL,
    item_id     text NOT NULL,
    path        text NOT NULL,
    line        bigint,
    raw         text,
    reason      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX etl_rejects_run ON ferry.etl_rejects (run_id);

-- Work for sync workers: pg_cron (or anyone) inserts, a worker claims a row with
-- FOR UPDATE SKIP LOCKED, runs the sync and records the run.
CREATE TABLE ferry.sync_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text,
    dataset       text,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    requested_by  text NOT NULL DEFAULT current_user,
    claimed_by    text,
    claimed_at    timestamptz,
    finished_at   timestamptz,
    run_id        bigint REFERENCES ferry.etl_runs (id),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'done', 'failed'))
);
CREATE INDEX sync_requests_pending ON ferry.sync_requests (requested_at) WHERE status = 'pending';

ALTER TABLE ferry.sync_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE ferry.etl_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ferry.onedrive_ingest ENABLE ROW LEVEL SECURITY;
ALTER TABLE ferry.etl_rejects ENABLE ROW LEVEL SECURITY;
ALTER TABLE ferry.sync_requests ENABLE ROW LEVEL SECURITY;

-- Supabase: the service role reads and writes these; anon and authenticated get nothing.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT USAGE ON SCHEMA ferry TO service_role;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ferry TO service_role;
    END IF;
END
$$;
