-- A prompt to provide missing report items names the items missing when it was issued.
ALTER TABLE prompts ADD COLUMN missing_items jsonb;
