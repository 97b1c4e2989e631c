DELETE FROM fee_rates WHERE kind = 'reissue';
ALTER TABLE fee_rates DROP CONSTRAINT fee_rates_kind_check;
ALTER TABLE fee_rates ADD CONSTRAINT fee_rates_kind_check CHECK (kind IN ('card', 'counter_enrollment', 'delivery'));
ALTER TABLE applications DROP COLUMN previous_application_id;
ALTER TABLE applications DROP COLUMN reissue_reason;
