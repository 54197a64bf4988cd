-- Version 2 of the sandbox world: zone status, and Uptime Kuma's
-- notifications (applied to version 1 files; fresh files get it after
-- schema.sql).

-- Cloudflare's zone `status` (initializing, pending, active, moved) and
-- `paused` (TS `src/resources/zones/zones.ts:371-385`, cloudflare notes §5).
ALTER TABLE zone ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE zone ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;

-- Uptime Kuma's notifications (`notification` table; the ids a monitor's
-- `monitor_notification` rows point to by foreign key, kuma notes §2-§3).
CREATE TABLE kuma_notification (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    active     INTEGER NOT NULL
) STRICT;

-- As the probed 2.5.3 instance had them: one webhook, one default.
INSERT INTO kuma_notification (id, name, is_default, active) VALUES
    (1, 'sandbox-webhook', 0, 1),
    (2, 'sandbox-default', 1, 1);
