DROP TABLE webauthn_ceremonies;
DROP TABLE passkeys;
DROP INDEX users_webauthn_id;
ALTER TABLE users DROP COLUMN webauthn_id;
