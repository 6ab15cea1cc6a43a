DROP TABLE security_events;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE users;
