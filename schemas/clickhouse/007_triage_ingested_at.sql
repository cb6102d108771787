-- When a triage row reached ClickHouse (platform clock), for readers that follow the audit trail as
-- it grows: the API's in-memory read model polls new triage rows by it (services/api, read-model/).
-- `at` cannot serve: it is the triaging replica's wall clock, so a replica running behind would
-- write rows "in the past" that a poller by `at` never sees.
-- Rows stored before this migration get the time of the migration (MATERIALIZE writes the DEFAULT
-- once; without it every read would compute now64() again and the old rows would look new forever).
ALTER TABLE {db}.alert_triage ADD COLUMN IF NOT EXISTS ingested_at DateTime64(3, 'UTC') DEFAULT now64(3) COMMENT 'written to ClickHouse';
ALTER TABLE {db}.alert_triage MATERIALIZE COLUMN ingested_at SETTINGS mutations_sync = 1;
