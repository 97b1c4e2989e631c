-- A search reads one date's slots of a city's offices (issue 11): keep a date's entries
-- together, by office, so the city's slots are found in a few index pages of that date.
DROP INDEX slots_date;
CREATE INDEX slots_by_date ON slots (date, office_id, shift);
-- and the city's offices with what ranking needs, from the index alone.
DROP INDEX offices_city;
CREATE INDEX offices_city ON offices (city_code, active, id, phone, step_free_access, eye_exception_capture,
    fingerprint_exception_capture, home_visits);
