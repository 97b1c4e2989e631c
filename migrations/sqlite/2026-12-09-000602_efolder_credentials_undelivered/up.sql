-- Issue 19 item 6: when an account's credentials SMS was given up for good. The next
-- registration attempt then points to credentials recovery; a recovery clears it.
ALTER TABLE efolder_accounts ADD COLUMN credentials_undelivered_at TIMESTAMP;
