-- No change to the tables: the fold changed (a create that fails for good
-- leaves its resource absent, whatever it was before), so the cached
-- projections are rebuilt from the events in this migration's transaction
-- (by the code that applies it).
-- Never edit a migration once released; add a new numbered file.
SELECT 1;
