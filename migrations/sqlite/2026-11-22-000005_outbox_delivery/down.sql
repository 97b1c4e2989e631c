DROP INDEX outbox_status;
DROP TABLE sandbox_emails;
DROP TABLE sandbox_sms;
