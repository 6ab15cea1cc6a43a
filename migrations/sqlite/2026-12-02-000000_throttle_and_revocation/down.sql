DROP INDEX sessions_access_not_before;
ALTER TABLE sessions DROP COLUMN access_not_before;
DROP TABLE login_failures;
