-- Each participant's notification level for a conversation: 'all', 'mentions' or 'none';
-- NULL follows the conversation's default (direct: all, group: mentions). Muting was 'none'.
ALTER TABLE participants
    ADD COLUMN notify text CHECK (notify IN ('all', 'mentions', 'none'));
UPDATE participants SET notify = 'none' WHERE muted;
ALTER TABLE participants DROP COLUMN muted;
-- The send path reads who asked for every message of a conversation: few rows in a big group.
CREATE INDEX participants_notify_all ON participants (conversation_id) WHERE notify = 'all';
