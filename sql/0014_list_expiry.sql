-- ja4-platform schema, migration 0014: allow/deny/challenge entries that expire.
-- `expires_at` 0 (the default, and every entry made before) never expires; an expired entry
-- stops applying but stays in the table and the audit log.
ALTER TABLE {db}.access_lists
    ADD COLUMN IF NOT EXISTS expires_at DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');
