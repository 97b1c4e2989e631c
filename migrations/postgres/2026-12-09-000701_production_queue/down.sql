ALTER TABLE enrollments DROP COLUMN latin_names_enc;
DROP INDEX enrollments_completed;
DROP TABLE production_leases;
