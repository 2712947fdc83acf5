-- Whether a batch names some feed at more than one position. Only such batches need the lookup
-- of sibling positions when a job finishes; batches from before this column count as having them.
ALTER TABLE batches ADD COLUMN duplicate_feeds INTEGER NOT NULL DEFAULT 1;
