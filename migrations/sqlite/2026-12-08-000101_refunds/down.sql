DROP INDEX payments_status;
UPDATE payments SET status = 'reversed' WHERE status = 'refunded';
ALTER TABLE payments DROP COLUMN reversal_error;
ALTER TABLE payments DROP COLUMN reversal_attempts;
