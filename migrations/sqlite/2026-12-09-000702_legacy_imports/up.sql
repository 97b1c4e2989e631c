-- Applications carried over from the old Portal (issue 20): the old id, the application
-- it became, and a keyed digest of the imported row, so a re-run of the same file changes
-- nothing and a changed row is refused.
CREATE TABLE legacy_imports (
    legacy_id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    row_digest TEXT NOT NULL,
    imported_at TIMESTAMP NOT NULL
);
