-- Since when an identity has been pending (issue 16): the inquiry job raises an alarm past
-- seed 002's 24 hours.
ALTER TABLE applications ADD COLUMN identity_pending_since TIMESTAMP;
UPDATE applications SET identity_pending_since = updated_at WHERE identity_status = 'pending';
