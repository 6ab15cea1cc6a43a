-- The batch rotation as one statement: the lock, the writes and the answer share one executor
-- start and one plan, where four statements cost four of each; the writes take what they need
-- from the tokens' update (no join back to the arrays, which grew with the square of the
-- batch); and the plan is made once per connection (generic), never again per call. The rules
-- are those of the function it replaces.
CREATE OR REPLACE FUNCTION doorman_rotate_tokens(
    p_token_ids BIGINT[],
    p_session_ids BIGINT[],
    p_successor_hashes BYTEA[],
    p_nows BIGINT[],
    p_ips TEXT[],
    p_user_agents TEXT[],
    p_key_versions INTEGER[]
) RETURNS BIGINT[] LANGUAGE plpgsql
-- Planned as lookups by key, nested loops over plain index scans, whatever the statistics say
-- (a generic plan otherwise builds a bitmap per lookup): one plan is kept per connection, and
-- one made while the tables were small (a new database, before any ANALYZE) would otherwise
-- hash-join whole tables long after they have grown.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_bitmapscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_rotated BIGINT[];
BEGIN
    -- The sessions are locked in id order, the order every batch takes: two batches (of two
    -- instances) never wait for each other in a circle. A session ended meanwhile is left out,
    -- and a token used meanwhile is seen as used (the update reads the row's newest version).
    WITH open AS MATERIALIZED (
        SELECT array_agg(id) AS ids FROM (
            SELECT id FROM sessions
            WHERE id = ANY(p_session_ids) AND ended_at IS NULL
            ORDER BY id FOR UPDATE
        ) AS locked
    ), used AS (
        UPDATE refresh_tokens AS t SET used_at = a.now
        FROM unnest(p_token_ids, p_session_ids, p_successor_hashes, p_nows, p_ips,
            p_user_agents, p_key_versions)
            AS a(token_id, session_id, successor_hash, now, ip, user_agent, key_version)
        WHERE t.id = a.token_id AND t.session_id = a.session_id AND t.used_at IS NULL
            AND a.session_id = ANY((SELECT ids FROM open)::BIGINT[])
        RETURNING t.id, t.session_id, a.successor_hash, a.now, a.ip, a.user_agent,
            a.key_version
    ), successors AS (
        INSERT INTO refresh_tokens (session_id, token_hash, parent_id, created_at)
        SELECT session_id, successor_hash, id, now FROM used
    ), touched AS (
        UPDATE sessions AS s
        SET last_used_at = u.now, last_ip = u.ip, last_user_agent = u.user_agent,
            key_version = u.key_version
        FROM used AS u
        WHERE s.id = u.session_id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_rotated FROM used;
    RETURN v_rotated;
END
$$;
