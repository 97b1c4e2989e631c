CREATE TABLE fee_rates_old (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('card', 'counter_enrollment', 'delivery')),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    effective_from DATE NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT,
    UNIQUE (kind, effective_from)
);
INSERT INTO fee_rates_old (id, kind, amount, effective_from, created_at, created_by)
SELECT id, kind, amount, effective_from, created_at, created_by FROM fee_rates WHERE kind <> 'reissue';
DROP TABLE fee_rates;
ALTER TABLE fee_rates_old RENAME TO fee_rates;
ALTER TABLE applications DROP COLUMN previous_application_id;
ALTER TABLE applications DROP COLUMN reissue_reason;
