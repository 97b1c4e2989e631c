DROP TABLE audit_log;
DROP TABLE outbox;
DROP TABLE applications;
DROP TABLE captcha_uses;
DROP TABLE entry_attempts;
DROP TABLE citizens;
DROP TABLE sandbox_mobile_owners;
DROP TABLE registry_people;
