-- A deleted message's edits no longer hold its text: its delete turns each of its earlier
-- message:updated changes into the message as deleted (content null, no attachments, deletedAt),
-- keeping their changeSeq (chat.change_log). This index finds those edits by message id.
CREATE INDEX IF NOT EXISTS conversation_changes_edits
    ON conversation_changes (conversation_id, (data->>'id'))
    WHERE event = 'message:updated';

-- Messages deleted before this migration: the same, with the deletedAt of their delete.
UPDATE conversation_changes AS edit
SET data = edit.data || jsonb_build_object(
    'content', NULL, 'attachments', '[]'::jsonb, 'deletedAt', deleted.data->'deletedAt'
)
FROM conversation_changes AS deleted
WHERE edit.event = 'message:updated'
  AND deleted.event = 'message:deleted'
  AND deleted.conversation_id = edit.conversation_id
  AND deleted.data->>'messageId' = edit.data->>'id';
