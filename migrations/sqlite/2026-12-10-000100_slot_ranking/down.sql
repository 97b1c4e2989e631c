DROP TRIGGER slots_counts_updated_new;
DROP TRIGGER slots_counts_updated_old;
DROP TRIGGER slots_counts_deleted;
DROP TRIGGER slots_counts_inserted;
DROP TABLE slot_counts;
DROP INDEX slots_ranked;
ALTER TABLE slots DROP COLUMN rank_key;
