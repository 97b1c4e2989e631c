DROP TABLE refunds;
ALTER TABLE applications DROP COLUMN withdrawal_reason_enc;
DROP INDEX slots_closed_taken;
DROP INDEX applications_offers;
ALTER TABLE applications DROP COLUMN displaced_at;
