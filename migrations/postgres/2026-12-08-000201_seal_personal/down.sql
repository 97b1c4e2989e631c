-- Brings the clear columns back. Values still waiting in `unsealed_values` return to
-- them; values already sealed cannot be opened in SQL (the key is the server's) and
-- come back empty.
ALTER TABLE applications
    ADD COLUMN birth_date DATE NOT NULL DEFAULT '1900-01-01',
    ADD COLUMN birth_date_jalali TEXT NOT NULL DEFAULT '',
    ADD COLUMN birth_date_hijri TEXT NOT NULL DEFAULT '',
    ADD COLUMN gender TEXT NOT NULL DEFAULT '',
    ADD COLUMN religion TEXT NOT NULL DEFAULT '',
    ADD COLUMN mother_name TEXT NOT NULL DEFAULT '',
    ADD COLUMN first_name TEXT,
    ADD COLUMN last_name TEXT;
UPDATE applications a SET
    birth_date = (u.value::json ->> 'birth_date')::date,
    birth_date_jalali = u.value::json ->> 'birth_date_jalali',
    birth_date_hijri = u.value::json ->> 'birth_date_hijri',
    gender = u.value::json ->> 'gender',
    religion = u.value::json ->> 'religion',
    mother_name = u.value::json ->> 'mother_name',
    first_name = u.value::json ->> 'first_name',
    last_name = u.value::json ->> 'last_name'
FROM unsealed_values u
WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = a.id;
ALTER TABLE applications DROP COLUMN personal_enc;

ALTER TABLE enrollments ADD COLUMN landline TEXT NOT NULL DEFAULT '', ADD COLUMN exception_note TEXT;
UPDATE enrollments e SET landline = u.value FROM unsealed_values u
WHERE u.table_name = 'enrollments' AND u.column_name = 'landline_enc' AND u.row_id = e.application_id;
UPDATE enrollments e SET exception_note = u.value FROM unsealed_values u
WHERE u.table_name = 'enrollments' AND u.column_name = 'exception_note_enc' AND u.row_id = e.application_id;
ALTER TABLE enrollments DROP COLUMN landline_enc, DROP COLUMN exception_note_enc;

ALTER TABLE efolder_accounts ADD COLUMN gender TEXT NOT NULL DEFAULT 'female' CHECK (gender IN ('female', 'male'));
UPDATE efolder_accounts a SET gender = u.value FROM unsealed_values u
WHERE u.table_name = 'efolder_accounts' AND u.column_name = 'gender_enc' AND u.row_id = a.id;
ALTER TABLE efolder_accounts DROP COLUMN gender_enc;

DROP TABLE unsealed_values;
