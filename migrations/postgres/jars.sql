-- jars' schema on PostgreSQL. Embedded in the binary; run by `jars migrate`, and by `jars serve`
-- (and the other commands) when they open the store, unless `[store] migrate = false`.
--
-- Idempotent: every step looks before it changes anything, so this runs any number of times, from
-- several nodes at once (an advisory lock serialises them), and as a role that does not own
-- jars.events once the changes are in place (PostgreSQL checks ownership before IF NOT EXISTS).
--
-- 1. The original JARS table, exactly as the original service's resources/schema.sql creates it,
--    when it does not exist yet (a fresh database). A database created by that file is used as is.
-- 2. jars' own additions: nullable columns only, and one index (the listing order). The
--    original service never names them (its INSERT lists its own columns, its SELECT * just
--    carries them along), so both can share the table.
DO $jars$
BEGIN
    PERFORM pg_advisory_xact_lock(4242017001);
    -- Never queue behind a long transaction holding the table: fail, and try again later.
    PERFORM set_config('lock_timeout', '1s', true);

    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'jars') THEN
        CREATE SCHEMA IF NOT EXISTS jars;
    END IF;

    IF to_regclass('jars.events') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.events (
            event_uuid UUID NOT NULL PRIMARY KEY,
            created_time TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
            created_by INTEGER NOT NULL,
            connected BOOLEAN DEFAULT FALSE NOT NULL,
            connected_by INTEGER,
            expires_time TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            title VARCHAR(255),
            description VARCHAR(255),
            -- If private, should not be shown on public-facing sites (e.g. OS returns to studio)
            private BOOLEAN DEFAULT FALSE NOT NULL,
            -- Could be used to link to a Show/Season/Timeslot in future
            relation_id INTEGER
        );
    END IF;

    -- When the event was last marked connected (/jars/connect, an Icecast mount_add). UTC.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.events'::regclass
                     AND attname = 'last_connected_at' AND NOT attisdropped) THEN
        ALTER TABLE jars.events ADD COLUMN IF NOT EXISTS last_connected_at TIMESTAMP WITHOUT TIME ZONE;
    END IF;

    -- When its source last went away (an Icecast mount_remove). UTC.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.events'::regclass
                     AND attname = 'last_disconnected_at' AND NOT attisdropped) THEN
        ALTER TABLE jars.events ADD COLUMN IF NOT EXISTS last_disconnected_at TIMESTAMP WITHOUT TIME ZONE;
    END IF;

    -- The event's own listener cap (issue 30), set by an admin; NULL: none. The original
    -- service never names it.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.events'::regclass
                     AND attname = 'max_listeners' AND NOT attisdropped) THEN
        ALTER TABLE jars.events ADD COLUMN IF NOT EXISTS max_listeners INTEGER;
    END IF;

    -- Listings page newest first by (created_time, event_uuid): an index in that order lets a
    -- page read its rows and stop instead of sorting the table. Harmless to the original
    -- service, which never names it.
    IF to_regclass('jars.events_listing_order') IS NULL THEN
        CREATE INDEX IF NOT EXISTS events_listing_order
            ON jars.events (created_time DESC, event_uuid DESC);
    END IF;
END
$jars$;

-- Revocations, bans and ended events (issue 16): tables of jars' own, which the original
-- service never reads. Every write of them moves jars.sanctions_version and sends
-- NOTIFY jars_sanctions, so that every node notices another's (or the CLI's) change.
DO $jars$
BEGIN
    PERFORM pg_advisory_xact_lock(4242017001);
    PERFORM set_config('lock_timeout', '1s', true);

    IF to_regclass('jars.bans') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.bans (
            id BIGSERIAL PRIMARY KEY,
            ip TEXT,
            member BIGINT,
            member_name TEXT,
            event_uuid UUID,
            reason TEXT,
            created_by BIGINT NOT NULL,
            created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            expires TIMESTAMP WITHOUT TIME ZONE
        );
    END IF;

    IF to_regclass('jars.revoked_tickets') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.revoked_tickets (
            jti TEXT NOT NULL PRIMARY KEY,
            event_uuid UUID NOT NULL,
            expires TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            created_by BIGINT NOT NULL,
            created TIMESTAMP WITHOUT TIME ZONE NOT NULL
        );
    END IF;

    IF to_regclass('jars.ticket_cutoffs') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.ticket_cutoffs (
            event_uuid UUID NOT NULL PRIMARY KEY,
            before TIMESTAMP WITHOUT TIME ZONE NOT NULL,
            created_by BIGINT NOT NULL
        );
    END IF;

    IF to_regclass('jars.event_ends') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.event_ends (
            event_uuid UUID NOT NULL PRIMARY KEY,
            ended_at TIMESTAMP WITHOUT TIME ZONE NOT NULL
        );
    END IF;

    IF to_regclass('jars.sanctions_version') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.sanctions_version (
            id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
            version BIGINT NOT NULL
        );
        INSERT INTO jars.sanctions_version (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;
    END IF;
END
$jars$;

-- Issue 28: revoked tickets keyed by (jti, event), so a revocation recorded against one event
-- can neither reach nor block a revocation of the same jti on another; and every sanction row
-- stamped with the version that wrote it, so that a node loads only the rows written since
-- the version it has. A lifted ban stays as a marked row (`lifted`) until purged; a purge
-- moves `horizon`, and a node older than it loads everything again. Rows written before this
-- carry version 0: a node that starts loads everything anyway.
DO $jars$
BEGIN
    PERFORM pg_advisory_xact_lock(4242017001);
    PERFORM set_config('lock_timeout', '1s', true);

    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.bans'::regclass AND attname = 'version' AND NOT attisdropped) THEN
        ALTER TABLE jars.bans ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.bans'::regclass AND attname = 'lifted' AND NOT attisdropped) THEN
        ALTER TABLE jars.bans ADD COLUMN IF NOT EXISTS lifted BOOLEAN NOT NULL DEFAULT FALSE;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.revoked_tickets'::regclass AND attname = 'version' AND NOT attisdropped) THEN
        ALTER TABLE jars.revoked_tickets ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.ticket_cutoffs'::regclass AND attname = 'version' AND NOT attisdropped) THEN
        ALTER TABLE jars.ticket_cutoffs ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.event_ends'::regclass AND attname = 'version' AND NOT attisdropped) THEN
        ALTER TABLE jars.event_ends ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = 'jars.sanctions_version'::regclass AND attname = 'horizon' AND NOT attisdropped) THEN
        ALTER TABLE jars.sanctions_version ADD COLUMN IF NOT EXISTS horizon BIGINT NOT NULL DEFAULT 0;
    END IF;

    -- The key: (jti) before, (jti, event_uuid) now.
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'jars.revoked_tickets'::regclass
                     AND contype = 'p' AND array_length(conkey, 1) = 2) THEN
        ALTER TABLE jars.revoked_tickets DROP CONSTRAINT IF EXISTS revoked_tickets_pkey;
        ALTER TABLE jars.revoked_tickets
            ADD CONSTRAINT revoked_tickets_pkey PRIMARY KEY (jti, event_uuid);
    END IF;

    IF to_regclass('jars.revoked_tickets_version') IS NULL THEN
        CREATE INDEX IF NOT EXISTS revoked_tickets_version ON jars.revoked_tickets (version);
    END IF;
    IF to_regclass('jars.revoked_tickets_expires') IS NULL THEN
        CREATE INDEX IF NOT EXISTS revoked_tickets_expires ON jars.revoked_tickets (expires);
    END IF;
END
$jars$;

-- Listener counts nodes share (issue 30): per node, per Icecast server it hears callbacks from,
-- per scope ('station' or an event's id), how many listeners it counts there, when it last
-- heard that server, and when it wrote the row (the database's clock). What holds a station's
-- or an event's listener cap over every node.
DO $jars$
BEGIN
    PERFORM pg_advisory_xact_lock(4242017001);
    PERFORM set_config('lock_timeout', '1s', true);

    IF to_regclass('jars.listener_counts') IS NULL THEN
        CREATE TABLE IF NOT EXISTS jars.listener_counts (
            node TEXT NOT NULL,
            server TEXT NOT NULL,
            scope TEXT NOT NULL,
            listeners INTEGER NOT NULL,
            heard TIMESTAMP WITHOUT TIME ZONE,
            seen TIMESTAMP WITH TIME ZONE NOT NULL,
            PRIMARY KEY (node, server, scope)
        );
    END IF;
END
$jars$;


-- Grants (issue 29): in the original's setup `postgres` owns the tables and runs `jars migrate`,
-- while jars serves as `jars`, which the original's schema granted jars.events alone. Every role
-- that may write jars.events (other than its owner) may use jars' own tables and sequences.
-- Only what is missing is granted, and only by a role that may (the tables' owner): run as the
-- serving role, with the grants in place, this changes nothing.
DO $jars$
DECLARE
    writer TEXT;
    tbl TEXT;
    privilege TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock(4242017001);
    PERFORM set_config('lock_timeout', '1s', true);
    FOR writer IN
        SELECT DISTINCT a.grantee::regrole::text
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = to_regclass('jars.events') AND a.privilege_type = 'INSERT'
          AND a.grantee <> 0 AND a.grantee <> c.relowner
    LOOP
        FOREACH tbl IN ARRAY ARRAY['jars.bans', 'jars.revoked_tickets', 'jars.ticket_cutoffs',
                                   'jars.event_ends', 'jars.sanctions_version',
                                   'jars.listener_sessions', 'jars.listener_counts']
        LOOP
            CONTINUE WHEN to_regclass(tbl) IS NULL
                OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = to_regclass(tbl)),
                                   'USAGE');
            FOREACH privilege IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] LOOP
                IF NOT has_table_privilege(writer, tbl, privilege) THEN
                    EXECUTE format('GRANT %s ON %s TO %s', privilege, tbl, writer);
                END IF;
            END LOOP;
        END LOOP;
        FOREACH tbl IN ARRAY ARRAY['jars.bans_id_seq', 'jars.listener_sessions_id_seq'] LOOP
            CONTINUE WHEN to_regclass(tbl) IS NULL
                OR NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = to_regclass(tbl)),
                                   'USAGE');
            IF NOT has_sequence_privilege(writer, tbl, 'USAGE') THEN
                EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', tbl, writer);
            END IF;
        END LOOP;
    END LOOP;
END
$jars$;

