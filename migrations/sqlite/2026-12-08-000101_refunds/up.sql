-- Payments settle without a person (issue 16): a reversal the bank did not confirm is
-- retried with backoff; past a limit the payment is `refund_failed`, listed for admins
-- with the bank's last reason. A confirmed reversal is `refunded` (formerly `reversed`).
ALTER TABLE payments ADD COLUMN reversal_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN reversal_error TEXT;
UPDATE payments SET status = 'refunded' WHERE status = 'reversed';
CREATE INDEX payments_status ON payments (status, id);
