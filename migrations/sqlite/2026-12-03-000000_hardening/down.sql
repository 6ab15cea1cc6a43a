ALTER TABLE sessions DROP COLUMN key_version;
ALTER TABLE security_events DROP COLUMN repeats;
DROP TABLE login_attempts;
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    subject TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX login_failures_lookup ON login_failures (scope, subject, failed_at);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
