-- National e-folder accounts (SPEC §4, seed 000). One account per subject: the
-- national code of a natural person, the legal national ID of a legal person
-- (`subject_hash`, a keyed HMAC, never the code itself). Personal values are sealed;
-- the password is kept only as an Argon2id hash.
CREATE TABLE efolder_accounts (
    id TEXT PRIMARY KEY,
    subject_hash TEXT NOT NULL UNIQUE,
    person_type TEXT NOT NULL CHECK (person_type IN ('natural', 'legal')),
    legal_id TEXT,
    -- The person's own national code (the representative's, for a legal person).
    nid_hash TEXT NOT NULL,
    national_id_enc TEXT NOT NULL,
    gender TEXT NOT NULL CHECK (gender IN ('female', 'male')),
    first_name_enc TEXT NOT NULL,
    last_name_enc TEXT NOT NULL,
    father_name_enc TEXT NOT NULL,
    mobile_enc TEXT NOT NULL,
    mobile_hint TEXT NOT NULL,
    postal_code_enc TEXT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    token_version INTEGER NOT NULL CHECK (token_version >= 0),
    failed_logins INTEGER NOT NULL CHECK (failed_logins >= 0),
    locked_until TIMESTAMP,
    -- How the generated credentials reached the person: by SMS, or shown at once
    -- because no SMS could be sent (seed 000 §5).
    credentials_delivery TEXT NOT NULL CHECK (credentials_delivery IN ('sms', 'shown')),
    last_login_at TIMESTAMP,
    password_changed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX efolder_accounts_nid ON efolder_accounts (nid_hash);

-- The one active password-reset code of an account: a keyed hash, 5 minutes, 3 attempts.
CREATE TABLE efolder_reset_codes (
    account_id TEXT PRIMARY KEY REFERENCES efolder_accounts (id),
    code_hash TEXT NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    expires_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP NOT NULL
);
