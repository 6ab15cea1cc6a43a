-- Failed logins, counted per account and per client address within `login_window`.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'account' (lower-cased username) or 'address' (client IP).
    scope TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    subject TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_lookup ON login_failures (scope, subject, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);

-- Access tokens of a session issued before this time must be renewed (e.g. after a role change),
-- so the new claims reach every instance within `revocation_poll`.
ALTER TABLE sessions ADD COLUMN access_not_before BIGINT;
CREATE INDEX sessions_access_not_before ON sessions (access_not_before)
    WHERE access_not_before IS NOT NULL;
