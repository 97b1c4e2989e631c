CREATE TABLE offices (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('civil_registry', 'government_counter', 'post_office')),
    province TEXT NOT NULL,
    city TEXT NOT NULL,
    city_code TEXT NOT NULL,
    phone TEXT NOT NULL,
    address TEXT NOT NULL,
    step_free_access BOOLEAN NOT NULL,
    eye_exception_capture BOOLEAN NOT NULL,
    fingerprint_exception_capture BOOLEAN NOT NULL,
    home_visits BOOLEAN NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX offices_city ON offices (city_code, active);

-- Approved capacity per weekday (0 = Saturday … 6 = Friday) and shift.
CREATE TABLE office_capacity (
    office_id TEXT NOT NULL REFERENCES offices (id),
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    shift TEXT NOT NULL CHECK (shift IN ('morning', 'afternoon')),
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    PRIMARY KEY (office_id, weekday, shift)
);

-- One date's capacity instead of the weekday's (0 closes the shift).
CREATE TABLE capacity_overrides (
    office_id TEXT NOT NULL REFERENCES offices (id),
    date DATE NOT NULL,
    shift TEXT NOT NULL CHECK (shift IN ('morning', 'afternoon')),
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    PRIMARY KEY (office_id, date, shift)
);

-- An office closed on a date and shift (existing bookings stay and are reported).
CREATE TABLE office_closures (
    office_id TEXT NOT NULL REFERENCES offices (id),
    date DATE NOT NULL,
    shift TEXT NOT NULL CHECK (shift IN ('morning', 'afternoon')),
    reason TEXT NOT NULL,
    PRIMARY KEY (office_id, date, shift)
);

-- National holidays: every office is closed.
CREATE TABLE holidays (
    date DATE PRIMARY KEY,
    name TEXT NOT NULL
);

-- The bookable seats of one office, date and shift. `taken` counts holds and bookings;
-- the database itself refuses to let it leave 0..capacity.
CREATE TABLE slots (
    office_id TEXT NOT NULL REFERENCES offices (id),
    date DATE NOT NULL,
    shift TEXT NOT NULL CHECK (shift IN ('morning', 'afternoon')),
    capacity INTEGER NOT NULL,
    taken INTEGER NOT NULL,
    closed BOOLEAN NOT NULL,
    PRIMARY KEY (office_id, date, shift),
    CHECK (taken >= 0 AND taken <= capacity)
);
CREATE INDEX slots_date ON slots (date);
