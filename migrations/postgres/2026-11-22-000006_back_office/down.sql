DROP TABLE idempotency_keys;
DROP TABLE clients;
DROP TABLE production_events;
DROP TABLE enrollments;
