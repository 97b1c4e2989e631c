-- The production line's queue (issue 20): an enrolled application handed to one
-- production client is leased to it until `leased_until`; another client polling in the
-- meantime does not get it. The `production_started` event takes it out of the queue.
CREATE TABLE production_leases (
    application_id TEXT PRIMARY KEY REFERENCES applications (id),
    client_id TEXT NOT NULL,
    leased_until TIMESTAMP NOT NULL
);

-- The queue is read oldest enrollment first.
CREATE INDEX enrollments_completed ON enrollments (completed_at, application_id);

-- The citizen's names in Latin letters as the office entered them from her documents
-- (sealed, like every personal value): the card carries them.
ALTER TABLE enrollments ADD COLUMN latin_names_enc TEXT;
