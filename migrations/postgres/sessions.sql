-- jars' listener sessions on PostgreSQL: one table every node writes to. Embedded in the binary;
-- run by `jars migrate`, and by `jars serve` when it opens the store, unless
-- `[store] migrate = false`. Idempotent: every step looks before it changes anything, and an
-- advisory lock serialises nodes migrating at once. The original JARS service never names it.
DO $jars$
DECLARE
    writer TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock(4242017002);
    PERFORM set_config('lock_timeout', '1s', true);

    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'jars') THEN
        CREATE SCHEMA IF NOT EXISTS jars;
    END IF;

    IF to_regclass('jars.listener_sessions') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.listener_sessions (
            id BIGSERIAL PRIMARY KEY,
            -- The event listened to; NULL for a static mount.
            event_uuid UUID,
            -- The mount as Icecast named it, without the query string.
            mount TEXT NOT NULL,
            -- The Icecast that reported the session and its client id there.
            server TEXT NOT NULL,
            port TEXT NOT NULL,
            client TEXT NOT NULL,
            -- UTC.
            started TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            ended TIMESTAMP WITHOUT TIME ZONE,
            -- Icecast's own duration in seconds, when it sent one.
            duration BIGINT,
            ticket TEXT,
            member BIGINT,
            -- As [sessions] ip keeps it.
            ip TEXT,
            agent TEXT,
            referer TEXT,
            -- The icecast-auth-timelimit jars answered, in seconds.
            timelimit BIGINT,
            -- left, timelimit, kicked or lost.
            end_reason TEXT
        );
        -- Whoever may write jars.events may write the sessions: in the original's setup
        -- `postgres` owns the tables (and runs `jars migrate`) while jars connects as `jars`,
        -- which was granted ALL on jars.events.
        FOR writer IN
            SELECT DISTINCT a.grantee::regrole::text
            FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = to_regclass('jars.events') AND a.privilege_type = 'INSERT'
              AND a.grantee <> 0 AND a.grantee <> c.relowner
        LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON jars.listener_sessions TO %s',
                           writer);
            EXECUTE format('GRANT USAGE ON SEQUENCE jars.listener_sessions_id_seq TO %s', writer);
        END LOOP;
    END IF;

    IF to_regclass('jars.listener_sessions_open') IS NULL THEN
        CREATE INDEX IF NOT EXISTS listener_sessions_open
            ON jars.listener_sessions (server, port, client) WHERE ended IS NULL;
    END IF;
    IF to_regclass('jars.listener_sessions_started') IS NULL THEN
        CREATE INDEX IF NOT EXISTS listener_sessions_started ON jars.listener_sessions (started);
    END IF;
    IF to_regclass('jars.listener_sessions_event') IS NULL THEN
        CREATE INDEX IF NOT EXISTS listener_sessions_event
            ON jars.listener_sessions (event_uuid, started);
    END IF;
END
$jars$;
