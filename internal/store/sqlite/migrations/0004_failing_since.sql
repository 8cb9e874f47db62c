-- When a destination's current run of failures began, kept once it has
-- lasted a minute, so that delivery.disable_after counts across restarts.
ALTER TABLE destinations ADD COLUMN failing_since INTEGER;
