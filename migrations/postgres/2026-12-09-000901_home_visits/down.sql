DROP TABLE home_visits;
ALTER TABLE applications DROP COLUMN home_visit_address;
