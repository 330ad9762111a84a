-- jars' sessions in the embedded SQLite file: one row per live session Icecast reported (listeners
-- and sources). Not one of sqlx's numbered migrations: the session store runs it whenever it opens
-- the file (every statement is idempotent), after converting the tables of an earlier layout.
CREATE TABLE IF NOT EXISTS sessions (
    id         INTEGER PRIMARY KEY,
    -- listener or source
    role       TEXT    NOT NULL,
    -- The Icecast that reported it (its hostname and port) and there the listener's client id,
    -- or the source's mount.
    server     TEXT    NOT NULL,
    port       TEXT    NOT NULL,
    client     TEXT    NOT NULL,
    -- The mount as Icecast named it; the event it belongs to (NULL: a static mount).
    mount      TEXT    NOT NULL,
    event_uuid TEXT,
    -- As [sessions] ip keeps it (NULL: nothing kept).
    ip         TEXT,
    agent      TEXT,
    referer    TEXT,
    -- What let it in: a ticket's jti, a member, a trusted relay.
    ticket     TEXT,
    member     INTEGER,
    relay      TEXT,
    -- Microseconds since the Unix epoch (UTC): the figures aggregate integers.
    started    INTEGER NOT NULL,
    -- The icecast-auth-timelimit jars answered, in seconds.
    timelimit  INTEGER,
    ended      INTEGER,
    -- Icecast's own duration in seconds, when it sent one.
    duration   INTEGER,
    -- left, timelimit, kicked or lost; for kicked, the deny reason's label.
    end_reason TEXT,
    end_cause  TEXT
);
-- The open row of a session key.
CREATE INDEX IF NOT EXISTS sessions_open ON sessions (server, port, role, client)
    WHERE ended IS NULL;
-- Rows by start: reports by date, and the purge.
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started);
-- An event's listeners, three ways, each holding what the figures' statements read
-- (src/store/sessions/figures.rs) in the order they group by, so that an event's figures are
-- read in order from these alone and never sorted but a row per server and second: per server
-- by start (and its second), with what the totals read, ...
CREATE INDEX IF NOT EXISTS sessions_event_starts
    ON sessions (event_uuid, server, port, started / 1000000, started, ended, duration, end_reason)
    WHERE role = 'listener';
-- ... per server by the second a closed row's counting ends (the figures' own expression; an
-- open row's is NULL), ...
CREATE INDEX IF NOT EXISTS sessions_event_ends ON sessions (event_uuid, server, port,
    started / 1000000 + coalesce(duration, max(0, (ended - started) / 1000000)),
    started, ended, duration)
    WHERE role = 'listener';
-- ... the open ones apart (their ends are now's, and few), ...
CREATE INDEX IF NOT EXISTS sessions_event_open
    ON sessions (event_uuid, server, port, started, ended, duration)
    WHERE role = 'listener' AND ended IS NULL;
-- ... and by who listened, for unique listeners.
CREATE INDEX IF NOT EXISTS sessions_event_who
    ON sessions (event_uuid, member, ticket, ip, started)
    WHERE role = 'listener';
-- Earlier releases' event indexes, without the server: the two above serve what they did.
DROP INDEX IF EXISTS sessions_event;
DROP INDEX IF EXISTS sessions_event_end;
