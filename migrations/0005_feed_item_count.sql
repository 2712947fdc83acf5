-- The number of items a feed has stored, kept by the writer (items added) and the retention
-- pruner (items deleted), so that an unchanged feed's event does not count its items again.
ALTER TABLE feeds ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;
UPDATE feeds SET item_count = (SELECT count(*) FROM items WHERE items.feed_id = feeds.id);
