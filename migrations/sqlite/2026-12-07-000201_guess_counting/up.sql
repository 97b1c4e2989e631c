-- Guesses at secrets (entry serials, passwords, status-lookup proofs, recovery details)
-- are counted before the secret is compared (issue 24). Keys are keyed hashes of the
-- purpose, the subject (national code or account) and the client address: nothing here
-- names a person or an address.

-- Failures in a row per (subject, client): the lock they earned.
CREATE TABLE attempt_locks (
    key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL CHECK (failures >= 0),
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX attempt_locks_updated ON attempt_locks (updated_at);

-- Failures per subject, and per client address, in fixed windows.
CREATE TABLE attempt_counts (
    key TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    hits INTEGER NOT NULL CHECK (hits >= 0),
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX attempt_counts_window ON attempt_counts (window_start);

-- Replaced by the per-(national code, client) locks above.
DROP TABLE entry_attempts;
