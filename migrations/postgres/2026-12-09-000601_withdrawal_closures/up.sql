-- Issue 19 items 2 and 3.
-- A citizen whose booked day was closed books again without a ban; the booking deadline
-- counts from the closure (docs/domain/booking.md, "Closures").
ALTER TABLE applications ADD COLUMN displaced_at TIMESTAMP;
-- Seats offered to displaced citizens lapse like holds.
CREATE INDEX applications_offers ON applications (hold_expires_at) WHERE appointment_status = 'offered';
-- The closure sweep: closed slots that still count seats (usually none).
CREATE INDEX slots_closed_taken ON slots (date) WHERE closed AND taken > 0;
-- Why the citizen withdrew (free text, sealed like the other personal values).
ALTER TABLE applications ADD COLUMN withdrawal_reason_enc TEXT;

-- A paid fee owed back after a withdrawal (docs/domain/payments.md, "Withdrawal and
-- refunds"): reversed through the bank the same day when it still allows it
-- (`reversing`), otherwise paid by transfer to the citizen's Sheba number (`requested`)
-- and settled by an administrator with the bank's reference.
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    payment_id TEXT NOT NULL UNIQUE REFERENCES payments (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    iban_enc TEXT NOT NULL,
    iban_hint TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('reversing', 'requested', 'settled')),
    method TEXT CHECK (method IN ('reversal', 'transfer')),
    bank_reference TEXT,
    reversal_error TEXT,
    requested_at TIMESTAMP NOT NULL,
    settled_at TIMESTAMP,
    settled_by TEXT,
    version INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX refunds_status ON refunds (status, id);
CREATE INDEX refunds_application ON refunds (application_id);
