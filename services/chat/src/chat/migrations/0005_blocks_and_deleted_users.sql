-- Who blocked whom. A block hides presence both ways and bars a direct conversation between
-- the two (opening one, adding the other to a group, writing in an existing direct one).
CREATE TABLE blocks (
    blocker_id uuid NOT NULL,
    blocked_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked ON blocks (blocked_id);

-- A deleted account stays in the directory as a tombstone, so its past messages still name
-- a sender ("Deleted account"); it can no longer be added, mentioned or written to.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
