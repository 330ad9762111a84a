-- The original jars.events columns (timestamps as UTC text "YYYY-MM-DD HH:MM:SS.ffffff", which
-- sorts and compares correctly), plus jars' nullable additions.
CREATE TABLE IF NOT EXISTS events (
    event_uuid           TEXT    NOT NULL PRIMARY KEY,
    created_time         TEXT    NOT NULL,
    created_by           INTEGER NOT NULL,
    connected            BOOLEAN NOT NULL DEFAULT FALSE,
    connected_by         INTEGER,
    expires_time         TEXT    NOT NULL,
    title                TEXT,
    description          TEXT,
    private              BOOLEAN NOT NULL DEFAULT FALSE,
    relation_id          INTEGER,
    last_connected_at    TEXT,
    last_disconnected_at TEXT
);

CREATE INDEX IF NOT EXISTS events_expires_time ON events (expires_time);
