ALTER TABLE clients DROP COLUMN token_version;
DROP TABLE sessions;
