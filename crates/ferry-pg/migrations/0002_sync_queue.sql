-- The sync queue's API: anyone (pg_cron, an app, a person in psql) asks for a run with
-- ferry.request_sync(); workers (`ferry sync --worker`) claim requests with
-- FOR UPDATE SKIP LOCKED, so several workers on several machines share the work and no
-- request runs twice. A NOTIFY on ferry_sync_requests wakes idle workers at once.

CREATE FUNCTION ferry.request_sync(p_source text DEFAULT NULL, p_dataset text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
AS $$
    INSERT INTO ferry.sync_requests (source, dataset) VALUES (p_source, p_dataset) RETURNING id
$$;

CREATE FUNCTION ferry.notify_sync_request() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('ferry_sync_requests', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER sync_requests_notify AFTER INSERT ON ferry.sync_requests
    FOR EACH ROW EXECUTE FUNCTION ferry.notify_sync_request();
