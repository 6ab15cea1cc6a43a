-- Sign-in attempts, counted before the password is checked: per account, per client address,
-- per known device, and sign-ups per address. A failed attempt stays counted for the window;
-- a successful one is taken back. (Replaces login_failures, which counted after the check.)
DROP TABLE login_failures;
CREATE TABLE login_attempts (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    attempted_at BIGINT NOT NULL
);
CREATE INDEX login_attempts_lookup ON login_attempts (scope, subject, attempted_at);
CREATE INDEX login_attempts_attempted_at ON login_attempts (attempted_at);

-- Repeated events of one subject (throttled attempts) are one row with a count.
ALTER TABLE security_events ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1;

-- 0: successors derived from the stored session key alone (sessions started before this
-- version); 1: from that key and the server's refresh secret, which is never in the database.
-- A session moves to 1 at its next rotation.
ALTER TABLE sessions ADD COLUMN key_version INTEGER NOT NULL DEFAULT 0;
