-- The sandbox phone: every SMS the sandbox sender "delivered" (a stand-in for the
-- operator network, read by admins, demos and tests). The recipient is sealed like any
-- mobile at rest; `recipient_hash` is its keyed lookup, for listing one phone's messages.
CREATE TABLE sandbox_sms (
    id TEXT PRIMARY KEY,
    recipient_hash TEXT NOT NULL,
    recipient_enc TEXT NOT NULL,
    recipient_hint TEXT NOT NULL,
    text_enc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sandbox_sms_recipient ON sandbox_sms (recipient_hash, id);

-- The sandbox mailbox: every e-mail the sandbox sender "delivered".
-- `body_enc` seals {"text","html"}; `attachment_names` is a JSON array of file names.
CREATE TABLE sandbox_emails (
    id TEXT PRIMARY KEY,
    recipient_hash TEXT NOT NULL,
    recipient_enc TEXT NOT NULL,
    recipient_hint TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_enc TEXT NOT NULL,
    attachment_names TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sandbox_emails_recipient ON sandbox_emails (recipient_hash, id);

-- The admin listing filters the outbox by status, channel or template, newest first.
CREATE INDEX outbox_status ON outbox (status, id);
