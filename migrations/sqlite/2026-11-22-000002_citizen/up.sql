-- The sandbox civil registry: a synthetic population standing in for the real registry.
-- (An outside system's stand-in, so it keeps clear values.)
CREATE TABLE registry_people (
    national_id TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    father_name TEXT NOT NULL,
    mother_name TEXT NOT NULL,
    gender TEXT NOT NULL,
    birth_date_jalali TEXT NOT NULL,
    alive BOOLEAN NOT NULL,
    serial_changed_at TIMESTAMP,
    mobile TEXT
);

-- The sandbox mobile-ownership service: which national codes a mobile is registered to.
CREATE TABLE sandbox_mobile_owners (
    mobile TEXT NOT NULL,
    national_id TEXT NOT NULL,
    PRIMARY KEY (mobile, national_id)
);

-- A person who entered with national code + serial. Tokens carry only `id`.
CREATE TABLE citizens (
    id TEXT PRIMARY KEY,
    nid_hash TEXT NOT NULL UNIQUE,
    nid_enc TEXT NOT NULL,
    -- The serial of the last entry, and whether the registry confirmed it then.
    serial_enc TEXT NOT NULL,
    serial_verified BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_entry_at TIMESTAMP NOT NULL
);

-- Wrong serials per national code: slowed down, then locked for a while.
CREATE TABLE entry_attempts (
    nid_hash TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);

-- Used captcha challenges, so an answer works once on any instance.
CREATE TABLE captcha_uses (
    nonce TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX captcha_uses_expires ON captcha_uses (expires_at);

CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    citizen_id TEXT NOT NULL REFERENCES citizens (id),
    cycle INTEGER NOT NULL,
    state TEXT NOT NULL,
    identity_status TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    appointment_status TEXT NOT NULL,
    slot_office_id TEXT,
    slot_date DATE,
    slot_shift TEXT,
    hold_expires_at TIMESTAMP,
    can_leave_home BOOLEAN,
    can_climb_stairs BOOLEAN,
    pupils_visible BOOLEAN,
    fingers_intact BOOLEAN,
    edits_left INTEGER NOT NULL,
    no_show_ban_until DATE,
    tracking_code TEXT UNIQUE,
    paid_at TIMESTAMP,
    delivery_office_id TEXT,
    reissue_required BOOLEAN NOT NULL,
    nid_hash TEXT NOT NULL,
    nid_enc TEXT NOT NULL,
    serial_enc TEXT NOT NULL,
    birth_date DATE NOT NULL,
    birth_date_jalali TEXT NOT NULL,
    birth_date_hijri TEXT NOT NULL,
    gender TEXT NOT NULL,
    religion TEXT NOT NULL,
    mother_name TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    mobile_hash TEXT NOT NULL,
    mobile_enc TEXT NOT NULL,
    family_enc TEXT,
    identity_attempts INTEGER NOT NULL,
    identity_next_check_at TIMESTAMP,
    created_by_client TEXT,
    version INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (citizen_id, cycle),
    CHECK (edits_left >= 0)
);
CREATE INDEX applications_nid ON applications (nid_hash);
CREATE INDEX applications_mobile ON applications (mobile_hash);
CREATE INDEX applications_slot ON applications (slot_office_id, slot_date, slot_shift);
CREATE INDEX applications_holds ON applications (hold_expires_at) WHERE appointment_status = 'held';
CREATE INDEX applications_pending_identity ON applications (identity_next_check_at) WHERE identity_status = 'pending';
CREATE INDEX applications_unbooked ON applications (paid_at) WHERE state = 'registered' AND appointment_status = 'none';
CREATE INDEX applications_booked_day ON applications (slot_date) WHERE appointment_status = 'booked';

-- Notifications (SMS, e-mail), written in the same transaction as the change causing them.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient_enc TEXT NOT NULL,
    recipient_hint TEXT NOT NULL,
    template TEXT NOT NULL,
    params_enc TEXT NOT NULL,
    lang TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    provider_id TEXT,
    last_error TEXT,
    application_id TEXT,
    dedupe_key TEXT UNIQUE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('queued', 'failed_temporary', 'sending');
CREATE INDEX outbox_application ON outbox (application_id);

-- Who did what to which application. Append-only: the code has no update or delete path.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    application_id TEXT,
    request_id TEXT,
    details TEXT
);
CREATE INDEX audit_log_application ON audit_log (application_id, at);
CREATE INDEX audit_log_at ON audit_log (at);
