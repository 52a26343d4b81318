-- The user directory chat needs, replicated from auth's user.* events.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    username text NOT NULL,
    display_name text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE conversations (
    id uuid PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('direct', 'group')),
    title text,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    -- The seq of the newest message: the row lock on it serializes writers of one
    -- conversation, which makes seq gap-free and strictly increasing.
    last_seq bigint NOT NULL DEFAULT 0,
    -- "<smaller id>:<larger id>" for a direct conversation: at most one per pair.
    direct_key text UNIQUE
);

CREATE TABLE participants (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at timestamptz NOT NULL,
    last_read_seq bigint NOT NULL DEFAULT 0,
    muted boolean NOT NULL DEFAULT false,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX participants_user ON participants (user_id);

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    sender_id uuid NOT NULL,
    client_message_id text,
    -- Short content inline; longer content lives in MongoDB message_bodies under the id.
    content text,
    body_in_mongo boolean NOT NULL DEFAULT false,
    attachments uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    edited_at timestamptz,
    deleted_at timestamptz,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
