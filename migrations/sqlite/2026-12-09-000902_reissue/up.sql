-- Re-issue (issue 19 item 4): a new card cycle after delivery (serial changed after
-- production, lost, damaged, data changed), linked to the cycle whose card it replaces.
ALTER TABLE applications ADD COLUMN reissue_reason TEXT;
ALTER TABLE applications ADD COLUMN previous_application_id TEXT;

-- The tariff gains the re-issue fee (SQLite cannot alter a CHECK: the table is rebuilt).
CREATE TABLE fee_rates_new (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('card', 'counter_enrollment', 'delivery', 'reissue')),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    effective_from DATE NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT,
    UNIQUE (kind, effective_from)
);
INSERT INTO fee_rates_new (id, kind, amount, effective_from, created_at, created_by)
SELECT id, kind, amount, effective_from, created_at, created_by FROM fee_rates;
DROP TABLE fee_rates;
ALTER TABLE fee_rates_new RENAME TO fee_rates;
