-- Back to four statements per batch.
CREATE OR REPLACE FUNCTION doorman_rotate_tokens(
    p_token_ids BIGINT[],
    p_session_ids BIGINT[],
    p_successor_hashes BYTEA[],
    p_nows BIGINT[],
    p_ips TEXT[],
    p_user_agents TEXT[],
    p_key_versions INTEGER[]
) RETURNS BIGINT[] LANGUAGE plpgsql
-- Planned as lookups by key, nested loops over indexes, whatever the statistics say: its plans
-- are kept per connection, and one made while the tables were small (a new database, before any
-- ANALYZE) would otherwise hash-join whole tables long after they have grown.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    v_open BIGINT[];
    v_rotated BIGINT[];
BEGIN
    -- Locked in id order, the order every batch takes: two batches (of two instances) never
    -- wait for each other in a circle. A session ended meanwhile is left out.
    SELECT array_agg(id) INTO v_open FROM (
        SELECT id FROM sessions
        WHERE id = ANY(p_session_ids) AND ended_at IS NULL
        ORDER BY id FOR UPDATE
    ) AS locked;
    WITH used AS (
        UPDATE refresh_tokens AS t SET used_at = r.now
        FROM unnest(p_token_ids, p_session_ids, p_nows) AS r(token_id, session_id, now)
        WHERE t.id = r.token_id AND t.session_id = r.session_id AND t.used_at IS NULL
            AND r.session_id = ANY(v_open)
        RETURNING t.id
    )
    SELECT array_agg(id) INTO v_rotated FROM used;
    IF v_rotated IS NULL THEN
        RETURN '{}';
    END IF;
    INSERT INTO refresh_tokens (session_id, token_hash, parent_id, created_at)
        SELECT r.session_id, r.successor_hash, r.token_id, r.now
        FROM unnest(p_token_ids, p_session_ids, p_successor_hashes, p_nows)
            AS r(token_id, session_id, successor_hash, now)
        WHERE r.token_id = ANY(v_rotated);
    UPDATE sessions AS s
        SET last_used_at = r.now, last_ip = r.ip, last_user_agent = r.user_agent,
            key_version = r.key_version
        FROM unnest(p_token_ids, p_session_ids, p_nows, p_ips, p_user_agents, p_key_versions)
            AS r(token_id, session_id, now, ip, user_agent, key_version)
        WHERE s.id = r.session_id AND r.token_id = ANY(v_rotated);
    RETURN v_rotated;
END
$$;
