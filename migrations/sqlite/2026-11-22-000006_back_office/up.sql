-- What the enrollment office recorded when it completed an enrollment, and the card's
-- hand-over. Outcomes and references only: never raw biometrics.
CREATE TABLE enrollments (
    application_id TEXT PRIMARY KEY REFERENCES applications (id),
    office_id TEXT NOT NULL REFERENCES offices (id),
    postal_code_enc TEXT NOT NULL,
    address_enc TEXT NOT NULL,
    landline TEXT NOT NULL,
    documents_checked BOOLEAN NOT NULL,
    fingerprints TEXT NOT NULL,
    face TEXT NOT NULL,
    exception_note TEXT,
    capture_reference TEXT NOT NULL,
    counter_fee BIGINT NOT NULL CHECK (counter_fee >= 0),
    completed_by TEXT NOT NULL,
    completed_at TIMESTAMP NOT NULL,
    delivered_by TEXT,
    delivered_at TIMESTAMP,
    delivery_office_id TEXT,
    delivery_fee BIGINT CHECK (delivery_fee >= 0)
);

-- Events reported by the card production system, idempotent per event id.
CREATE TABLE production_events (
    event_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    client_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    office_id TEXT,
    note TEXT,
    result_state TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX production_events_application ON production_events (application_id, received_at);

-- Machine clients (partner kiosks, the card production system): OAuth2 client credentials.
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('kiosk', 'production')),
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    office_id TEXT,
    disabled BOOLEAN NOT NULL,
    rate_per_minute INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Idempotency keys per client: the first answer is kept and replayed.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
