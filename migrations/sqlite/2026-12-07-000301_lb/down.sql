DROP INDEX sandbox_sms_local_id;
ALTER TABLE sandbox_sms DROP COLUMN local_id;
ALTER TABLE outbox DROP COLUMN claim_token;
ALTER TABLE audit_log DROP COLUMN client_ip;
