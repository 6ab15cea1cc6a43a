CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
