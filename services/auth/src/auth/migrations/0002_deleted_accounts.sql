-- The durable record of deleted accounts, kept while a token of theirs could still be alive:
-- Redis' revocation keys are rebuilt from it (and from sessions.revoked_at) after a loss.
CREATE TABLE deleted_accounts (
    user_id uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL
);
CREATE INDEX deleted_accounts_at ON deleted_accounts (deleted_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
