DROP INDEX offices_city;
CREATE INDEX offices_city ON offices (city_code, active);
DROP INDEX slots_by_city;
CREATE INDEX slots_date ON slots (date);
ALTER TABLE slots DROP COLUMN city_code;
