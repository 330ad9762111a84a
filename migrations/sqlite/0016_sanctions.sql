-- Revocations, bans and ended events (issue 16), and one version number every write of them
-- moves, so that `jars serve` notices the CLI's writes by polling one cheap row.
-- Numbered 0016 after the issue, not in sequence: other tables may take 0003 onwards.
CREATE TABLE IF NOT EXISTS bans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ip          TEXT,
    member      INTEGER,
    member_name TEXT,
    event_uuid  TEXT,
    reason      TEXT,
    created_by  INTEGER NOT NULL,
    created     TEXT    NOT NULL,
    expires     TEXT
);

-- One ticket, by its jti, revoked until the ticket would have expired anyway.
CREATE TABLE IF NOT EXISTS revoked_tickets (
    jti        TEXT    NOT NULL PRIMARY KEY,
    event_uuid TEXT    NOT NULL,
    expires    TEXT    NOT NULL,
    created_by INTEGER NOT NULL,
    created    TEXT    NOT NULL
);

-- Every ticket of an event issued at or before `before` is revoked.
CREATE TABLE IF NOT EXISTS ticket_cutoffs (
    event_uuid TEXT    NOT NULL PRIMARY KEY,
    before     TEXT    NOT NULL,
    created_by INTEGER NOT NULL
);

-- Events ended early (`jars event end`, POST /jars/events/{id}/end), when.
CREATE TABLE IF NOT EXISTS event_ends (
    event_uuid TEXT NOT NULL PRIMARY KEY,
    ended_at   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sanctions_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO sanctions_version (id, version) VALUES (1, 0);
