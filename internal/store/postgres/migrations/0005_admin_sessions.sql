-- Console sign-ins (docs/SECURITY.md), shared by every replica: a digest of
-- each session cookie, the MAC that binds it to the admin token that made
-- it, and its lifetime. No column holds a secret.
CREATE TABLE admin_sessions (
    id_hash    TEXT PRIMARY KEY,
    token_mac  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
