-- One email address per account, unique whatever its case (email_key: lower-cased), and when
-- it was verified (only verified addresses get reset links and notices).
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
CREATE UNIQUE INDEX users_email_key ON users (email_key);

-- Links sent by mail (verify an address, reset a password, report a session), stored hashed,
-- single use, valid reset_ttl.
CREATE TABLE email_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT,
    session_id BIGINT REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- Mail to send, written in the transaction of the change it tells of and sent after the
-- commit by whichever instance claims it first; retried with backoff.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    template TEXT NOT NULL,
    context TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (sent_at, next_attempt_at);
