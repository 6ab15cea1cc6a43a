ALTER TABLE webauthn_ceremonies DROP COLUMN binding;
DROP INDEX users_email_key;
DROP INDEX users_verified_email_key;
CREATE UNIQUE INDEX users_email_key ON users (email_key);
ALTER TABLE users DROP COLUMN device_epoch;
