-- 008: a sequence's saved label settings (format, bar code, size, dpi,
-- layout, text, title) as JSON text, so a scanner station only sends a
-- count. '' means none are saved. Adding a column with a constant default
-- only changes the catalog: no table rewrite, no long lock.
ALTER TABLE allot_sequences ADD COLUMN label text NOT NULL DEFAULT '';
