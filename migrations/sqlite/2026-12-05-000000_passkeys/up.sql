-- The WebAuthn user handle of an account: random, so authenticators never hold a row number
-- or a name.
ALTER TABLE users ADD COLUMN webauthn_id TEXT;
CREATE UNIQUE INDEX users_webauthn_id ON users (webauthn_id);

-- Passkeys: the credential as webauthn-rs keeps it (JSON: public key, counter, flags).
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- WebAuthn ceremonies under way (the server's half: challenge and rules), single use, stored
-- so that any instance can finish what another started.
CREATE TABLE webauthn_ceremonies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_at ON webauthn_ceremonies (expires_at);
