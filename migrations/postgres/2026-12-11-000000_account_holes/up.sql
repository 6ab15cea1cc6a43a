-- Known-device tokens are signed with the account's device epoch: a password change, reset,
-- second-factor reset, "this wasn't me" report or disable moves it, and older tokens stop
-- counting as known devices.
ALTER TABLE users ADD COLUMN device_epoch BIGINT NOT NULL DEFAULT 0;

-- Only verified addresses are unique: an address another account added and never verified
-- does not stop its owner.
DROP INDEX users_email_key;
CREATE UNIQUE INDEX users_verified_email_key ON users (email_key) WHERE email_verified_at IS NOT NULL;
CREATE INDEX users_email_key ON users (email_key);

-- A passkey ceremony is finished only by the browser (or session) that started it: the hash of
-- what it was bound to.
ALTER TABLE webauthn_ceremonies ADD COLUMN binding BYTEA;
