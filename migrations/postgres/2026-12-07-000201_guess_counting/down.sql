CREATE TABLE entry_attempts (
    nid_hash TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
DROP TABLE attempt_counts;
DROP TABLE attempt_locks;
