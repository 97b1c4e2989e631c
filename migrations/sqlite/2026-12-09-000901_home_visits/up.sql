-- Home visits (issue 19 item 1, seed 001 «شناسایی شهروندان نیازمند به تکمیل ثبت نام خاص»):
-- a citizen who cannot leave home gives the address to visit before paying; offices with
-- `home_visits` in the same city see the paid ones in a queue and schedule the visit.
ALTER TABLE applications ADD COLUMN home_visit_address BOOLEAN NOT NULL DEFAULT 0;

-- One row per application: the city (from the landline's area code) the queue is read by,
-- and the address, postal code, landline and notes sealed together (`details_enc`).
CREATE TABLE home_visits (
    application_id TEXT PRIMARY KEY REFERENCES applications (id),
    city_code TEXT NOT NULL,
    details_enc TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    scheduled_by TEXT,
    scheduled_at TIMESTAMP
);
CREATE INDEX home_visits_city ON home_visits (city_code, application_id);
