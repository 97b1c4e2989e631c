ALTER TABLE applications DROP COLUMN identity_pending_since;
