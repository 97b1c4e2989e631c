-- Public lookups per national code and Tehran day (status: 20 a day, tracking-code
-- recovery: 3 a day), so one code cannot be probed forever from many addresses.
-- Keyed by the national code's HMAC lookup value, never the code itself.
CREATE TABLE public_lookup_counts (
    nid_hash TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('status', 'recovery')),
    day DATE NOT NULL,
    hits INTEGER NOT NULL CHECK (hits >= 0),
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (nid_hash, purpose, day)
);
CREATE INDEX public_lookup_counts_day ON public_lookup_counts (day);
