-- Uploaded media: chat owns the metadata, the bytes live in the blob store under storage_key.
-- A row starts 'pending' when the upload is stored; the worker's media.processed moves it to
-- 'ready' (with what the decoder found) or 'rejected' (with the reason), once.
CREATE TABLE media (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'ready', 'rejected')),
    content_type text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes > 0),
    storage_key text NOT NULL,
    filename text,
    width integer,
    height integer,
    thumbnail_key text,
    reason text,
    created_at timestamptz NOT NULL,
    processed_at timestamptz
);
CREATE INDEX media_owner ON media (owner_id);

-- "Which messages carry this media?" decides who may download it.
CREATE INDEX messages_attachments ON messages USING gin (attachments);
