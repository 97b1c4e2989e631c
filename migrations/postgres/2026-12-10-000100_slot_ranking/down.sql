DROP TRIGGER slots_counts_updated ON slots;
DROP TRIGGER slots_counts_deleted ON slots;
DROP TRIGGER slots_counts_inserted ON slots;
DROP FUNCTION slot_counts_updated();
DROP FUNCTION slot_counts_deleted();
DROP FUNCTION slot_counts_inserted();
DROP TABLE slot_counts;
DROP INDEX slots_ranked;
ALTER TABLE slots DROP COLUMN rank_key;
