-- An event's own listener cap (issue 30), set by an admin at /jars/create or later; NULL: none.
-- Numbered after the issue, like 0016.
ALTER TABLE events ADD COLUMN max_listeners INTEGER;
