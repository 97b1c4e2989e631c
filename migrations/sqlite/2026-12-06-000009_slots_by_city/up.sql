-- Deadline-day searches (issue 11) read one city's slots of one date. Each slot carries
-- its office's city code, so those slots are one range of `slots_by_city`, and the
-- city's offices, with what ranking needs, one range of `offices_city`: no per-office
-- lookups, however many offices a city has.
ALTER TABLE slots ADD COLUMN city_code TEXT NOT NULL DEFAULT '';
UPDATE slots SET city_code = (SELECT o.city_code FROM offices o WHERE o.id = slots.office_id);
DROP INDEX slots_date;
CREATE INDEX slots_by_city ON slots (date, city_code, office_id, shift);
DROP INDEX offices_city;
CREATE INDEX offices_city ON offices (city_code, active, id, phone, step_free_access, eye_exception_capture,
    fingerprint_exception_capture, home_visits);
