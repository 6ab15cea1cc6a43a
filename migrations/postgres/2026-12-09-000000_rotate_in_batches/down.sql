DROP FUNCTION doorman_rotate_tokens(BIGINT[], BIGINT[], BYTEA[], BIGINT[], TEXT[], TEXT[], INTEGER[]);

-- The writes of one refresh-token rotation as one call: a round trip instead of one per statement,
-- and plans PL/pgSQL prepares once per connection. Rotates only a token still live in a session
-- still open, so it is safe outside a transaction of the caller's; false when it changed nothing.
-- Locks the session row first, the order every other rotation and session change takes.
CREATE FUNCTION doorman_rotate_token(
    p_token_id BIGINT,
    p_session_id BIGINT,
    p_successor_hash BYTEA,
    p_now BIGINT,
    p_ip TEXT,
    p_user_agent TEXT,
    p_key_version INTEGER
) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM sessions WHERE id = p_session_id AND ended_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    UPDATE refresh_tokens SET used_at = p_now
        WHERE id = p_token_id AND session_id = p_session_id AND used_at IS NULL;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    INSERT INTO refresh_tokens (session_id, token_hash, parent_id, created_at)
        VALUES (p_session_id, p_successor_hash, p_token_id, p_now);
    UPDATE sessions
        SET last_used_at = p_now, last_ip = p_ip, last_user_agent = p_user_agent,
            key_version = p_key_version
        WHERE id = p_session_id;
    RETURN TRUE;
END
$$;
