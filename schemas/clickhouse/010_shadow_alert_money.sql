-- Shadow alerts carry the money they are about too (issue 11): alerts_shadow has "the same columns
-- as alerts" (008), and 009 gave alerts `currency` and `amount_minor`. Until now the sink's shadow
-- rows lost them (JSONEachRow skips unknown fields). Both nullable: no single amount, or written before.
ALTER TABLE {db}.alerts_shadow ADD COLUMN IF NOT EXISTS currency LowCardinality(Nullable(String)) COMMENT 'ISO 4217; null: no single amount';
ALTER TABLE {db}.alerts_shadow ADD COLUMN IF NOT EXISTS amount_minor Nullable(Int64) COMMENT 'minor units of currency';
