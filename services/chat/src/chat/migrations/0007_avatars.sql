-- The image each user shows as avatar (from auth's user.avatar_changed): anyone signed in may
-- fetch it and its thumbnail, as anyone signed in may see the profile.
ALTER TABLE users ADD COLUMN avatar_media_id uuid;
ALTER TABLE users ADD COLUMN avatar_changed_at timestamptz;
CREATE INDEX users_avatar ON users (avatar_media_id) WHERE avatar_media_id IS NOT NULL;
