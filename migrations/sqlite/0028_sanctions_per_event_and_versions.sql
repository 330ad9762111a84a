-- Issue 28: revoked tickets keyed by (jti, event), so a revocation recorded against one event
-- can neither reach nor block a revocation of the same jti on another; and every sanction row
-- stamped with the version that wrote it, so that a node loads only the rows written since
-- the version it has. A lifted ban stays as a marked row (`lifted`) until purged; a purge
-- moves `horizon`, and a node older than it loads everything again.
-- Numbered 0028 after the issue, not in sequence.
CREATE TABLE IF NOT EXISTS revoked_tickets_by_event (
    jti        TEXT    NOT NULL,
    event_uuid TEXT    NOT NULL,
    expires    TEXT    NOT NULL,
    created_by INTEGER NOT NULL,
    created    TEXT    NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (jti, event_uuid)
);
INSERT OR IGNORE INTO revoked_tickets_by_event (jti, event_uuid, expires, created_by, created)
    SELECT jti, event_uuid, expires, created_by, created FROM revoked_tickets;
DROP TABLE revoked_tickets;
ALTER TABLE revoked_tickets_by_event RENAME TO revoked_tickets;
CREATE INDEX IF NOT EXISTS revoked_tickets_version ON revoked_tickets (version);
CREATE INDEX IF NOT EXISTS revoked_tickets_expires ON revoked_tickets (expires);

ALTER TABLE bans ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bans ADD COLUMN lifted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_cutoffs ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE event_ends ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sanctions_version ADD COLUMN horizon INTEGER NOT NULL DEFAULT 0;
