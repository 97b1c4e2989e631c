-- One row per attempt to pay, written before the bank is called.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id BIGINT NOT NULL UNIQUE,
    application_id TEXT NOT NULL REFERENCES applications (id),
    gateway TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    status TEXT NOT NULL,
    token TEXT,
    redirect_url TEXT,
    reference TEXT,
    card_mask TEXT,
    bank_code TEXT,
    expires_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL,
    next_check_at TIMESTAMP,
    last_error TEXT,
    version INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    settled_at TIMESTAMP
);
-- At most one successful payment applies to an application.
CREATE UNIQUE INDEX payments_one_verified ON payments (application_id) WHERE status = 'verified';
CREATE INDEX payments_application ON payments (application_id);
CREATE INDEX payments_reconcile ON payments (next_check_at)
    WHERE status IN ('created', 'redirected', 'callback_received', 'unknown');

-- The sandbox bank's own books (a stand-in for a bank, served by this API under /sandbox/bank).
CREATE TABLE sandbox_bank_payments (
    token TEXT PRIMARY KEY,
    order_id BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    merchant TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    outcome TEXT,
    reference TEXT,
    verified BOOLEAN NOT NULL,
    reversed BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Fee tariff lines: this fee is this amount from this date on.
CREATE TABLE fee_rates (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('card', 'counter_enrollment', 'delivery')),
    amount BIGINT NOT NULL CHECK (amount >= 0),
    effective_from DATE NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT,
    UNIQUE (kind, effective_from)
);
