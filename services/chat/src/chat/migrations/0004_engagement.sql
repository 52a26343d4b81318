-- Whether a participant has taken part in the conversation: created it, sent a message in it,
-- or accepted it. Presence and read markers are shared only between participants who both
-- have. Conversations from before this column were all treated as taken part in.
ALTER TABLE participants ADD COLUMN engaged boolean NOT NULL DEFAULT false;
UPDATE participants SET engaged = true;
