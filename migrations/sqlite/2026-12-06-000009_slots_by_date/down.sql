DROP INDEX offices_city;
CREATE INDEX offices_city ON offices (city_code, active);
DROP INDEX slots_by_date;
CREATE INDEX slots_date ON slots (date);
