-- jars' sessions on PostgreSQL: one row per live session Icecast reported (listeners and sources),
-- one table every node writes to. Embedded in the binary; run by `jars migrate`, and by
-- `jars serve` when it opens the store, unless `[store] migrate = false`. Idempotent: every step
-- looks before it changes anything (so a role that may not alter the table is fine when there is
-- nothing to do), and an advisory lock serialises nodes migrating at once. The original JARS
-- service never names it; its name is from when it held listeners only.
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
            -- The Icecast that reported the session and there the listener's client id, or
            -- the source's mount.
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
            end_reason TEXT,
            -- listener or source.
            role TEXT NOT NULL DEFAULT 'listener',
            -- The trusted relay a source came through.
            relay TEXT,
            -- For kicked: the deny reason's label.
            end_cause TEXT
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

    -- Tables of releases that stored listeners only. A column added with a constant default
    -- does not rewrite the table.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'jars.listener_sessions'::regclass
                   AND attname = 'role' AND NOT attisdropped) THEN
        ALTER TABLE jars.listener_sessions ADD COLUMN IF NOT EXISTS role TEXT NOT NULL
            DEFAULT 'listener';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'jars.listener_sessions'::regclass
                   AND attname = 'relay' AND NOT attisdropped) THEN
        ALTER TABLE jars.listener_sessions ADD COLUMN IF NOT EXISTS relay TEXT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'jars.listener_sessions'::regclass
                   AND attname = 'end_cause' AND NOT attisdropped) THEN
        ALTER TABLE jars.listener_sessions ADD COLUMN IF NOT EXISTS end_cause TEXT;
    END IF;

    -- The open row of a key (a listener's client id and a source's mount never look alike).
    IF to_regclass('jars.listener_sessions_open') IS NULL THEN
        CREATE INDEX IF NOT EXISTS listener_sessions_open
            ON jars.listener_sessions (server, port, client) WHERE ended IS NULL;
    END IF;
    -- Rows by start: reports by date, and the purge.
    IF to_regclass('jars.listener_sessions_started') IS NULL THEN
        CREATE INDEX IF NOT EXISTS listener_sessions_started ON jars.listener_sessions (started);
    END IF;
    -- An event's listeners by start, holding what the figures read (src/store/sessions/
    -- figures.rs), the server included, so that they are read from the index alone once
    -- vacuum has marked the table's pages all-visible. It serves what listener_sessions_event
    -- and listener_sessions_listeners of earlier releases did, which go.
    IF to_regclass('jars.listener_sessions_of_event') IS NULL THEN
        CREATE INDEX IF NOT EXISTS listener_sessions_of_event
            ON jars.listener_sessions (event_uuid, started)
            INCLUDE (ended, duration, end_reason, member, ticket, ip, server, port)
            WHERE role = 'listener';
    END IF;
    IF to_regclass('jars.listener_sessions_event') IS NOT NULL THEN
        DROP INDEX IF EXISTS jars.listener_sessions_event;
    END IF;
    IF to_regclass('jars.listener_sessions_listeners') IS NOT NULL THEN
        DROP INDEX IF EXISTS jars.listener_sessions_listeners;
    END IF;
END
$jars$;
