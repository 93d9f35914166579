-- When hubwatch first saw each model listed. A repo created privately and made public days
-- later is listed with an old createdAt; first_seen_at - created_at is how late it came.
-- Rows written before this column read their observed_at (then always the first sighting).
ALTER TABLE models ADD COLUMN IF NOT EXISTS first_seen_at DateTime64(3, 'UTC') DEFAULT observed_at COMMENT 'when hubwatch first saw it listed, by any stream; long after created_at for a late-listed repo' AFTER observed_at;
