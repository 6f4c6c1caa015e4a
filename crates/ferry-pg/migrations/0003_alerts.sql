-- Alerts the sync raised: a failed run, a stale cursor. Each is also sent with
-- NOTIFY ferry_alerts (the row as JSON) and, when configured, to a webhook.

CREATE TABLE ferry.alerts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised_at  timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL CHECK (kind IN ('run_failed', 'stale_cursor', 'throttled')),
    source     text NOT NULL,
    run_id     bigint REFERENCES ferry.etl_runs (id),
    message    text NOT NULL
);
CREATE INDEX alerts_source_kind ON ferry.alerts (source, kind, raised_at DESC);
ALTER TABLE ferry.alerts ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ferry.alerts TO service_role;
    END IF;
END
$$;
