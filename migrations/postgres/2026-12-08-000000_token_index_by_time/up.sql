-- A rotation's tokens are found by their own index (issue time and hash) and the chain by
-- parent; the index by session served only deletions of whole sessions, which doorman never
-- makes, and cost every rotation a write into that session's index page.
DROP INDEX refresh_tokens_session_id;
