-- Every change to what a client already holds of a conversation (an edit, a delete, a read
-- marker, the title, members and roles), numbered per conversation without gaps: a client
-- that was away replays them after the last changeSeq it holds. The head row is locked by
-- each change until its transaction ends, so change_seq commits in order and a reader never
-- skips one. It is a table of its own so that changes do not wait on the send path's lock of
-- the conversation row.
CREATE TABLE change_heads (
    conversation_id uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    last_change_seq bigint NOT NULL
);

CREATE TABLE conversation_changes (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    change_seq bigint NOT NULL,
    event text NOT NULL,
    data jsonb NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, change_seq)
);

-- The change that made a message's current version (its edit or delete); 0 if none.
ALTER TABLE messages ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
