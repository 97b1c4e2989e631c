-- Re-issue (issue 19 item 4): a new card cycle after delivery (serial changed after
-- production, lost, damaged, data changed), linked to the cycle whose card it replaces.
ALTER TABLE applications ADD COLUMN reissue_reason TEXT;
ALTER TABLE applications ADD COLUMN previous_application_id TEXT;

-- The tariff gains the re-issue fee.
ALTER TABLE fee_rates DROP CONSTRAINT fee_rates_kind_check;
ALTER TABLE fee_rates ADD CONSTRAINT fee_rates_kind_check
    CHECK (kind IN ('card', 'counter_enrollment', 'delivery', 'reissue'));
