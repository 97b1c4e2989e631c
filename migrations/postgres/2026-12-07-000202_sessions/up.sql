-- Sessions behind citizen, staff and e-folder tokens, so a session can be ended on the
-- server (logout) and a staff session can expire when idle (issue 24). Tokens carry the
-- session's id (`sid`); nothing personal is stored here.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('citizen', 'staff', 'efolder')),
    subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Machine tokens carry the client's token version: rotating the secret or disabling the
-- client bumps it, and older tokens stop at once.
ALTER TABLE clients ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;
