-- 008: a sequence's saved label settings (format, bar code, size, dpi,
-- layout, text, title) as JSON, so a scanner station only sends a count.
-- '' means none are saved. The renderer validates the settings before they
-- are stored; the database keeps them as text.
ALTER TABLE allot_sequences ADD COLUMN label TEXT NOT NULL DEFAULT '';
