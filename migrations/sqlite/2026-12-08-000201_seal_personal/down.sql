-- Brings the clear columns back. Values still waiting in `unsealed_values` return to
-- them; values already sealed cannot be opened in SQL (the key is the server's) and
-- come back empty.
ALTER TABLE applications ADD COLUMN birth_date DATE NOT NULL DEFAULT '1900-01-01';
ALTER TABLE applications ADD COLUMN birth_date_jalali TEXT NOT NULL DEFAULT '';
ALTER TABLE applications ADD COLUMN birth_date_hijri TEXT NOT NULL DEFAULT '';
ALTER TABLE applications ADD COLUMN gender TEXT NOT NULL DEFAULT '';
ALTER TABLE applications ADD COLUMN religion TEXT NOT NULL DEFAULT '';
ALTER TABLE applications ADD COLUMN mother_name TEXT NOT NULL DEFAULT '';
ALTER TABLE applications ADD COLUMN first_name TEXT;
ALTER TABLE applications ADD COLUMN last_name TEXT;
UPDATE applications SET
    birth_date = (SELECT json_extract(u.value, '$.birth_date') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    birth_date_jalali = (SELECT json_extract(u.value, '$.birth_date_jalali') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    birth_date_hijri = (SELECT json_extract(u.value, '$.birth_date_hijri') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    gender = (SELECT json_extract(u.value, '$.gender') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    religion = (SELECT json_extract(u.value, '$.religion') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    mother_name = (SELECT json_extract(u.value, '$.mother_name') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    first_name = (SELECT json_extract(u.value, '$.first_name') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id),
    last_name = (SELECT json_extract(u.value, '$.last_name') FROM unsealed_values u WHERE u.table_name = 'applications' AND u.column_name = 'personal_enc' AND u.row_id = applications.id)
WHERE id IN (SELECT row_id FROM unsealed_values WHERE table_name = 'applications' AND column_name = 'personal_enc');
ALTER TABLE applications DROP COLUMN personal_enc;

ALTER TABLE enrollments ADD COLUMN landline TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN exception_note TEXT;
UPDATE enrollments SET landline = (SELECT u.value FROM unsealed_values u WHERE u.table_name = 'enrollments' AND u.column_name = 'landline_enc' AND u.row_id = enrollments.application_id)
WHERE application_id IN (SELECT row_id FROM unsealed_values WHERE table_name = 'enrollments' AND column_name = 'landline_enc');
UPDATE enrollments SET exception_note = (SELECT u.value FROM unsealed_values u WHERE u.table_name = 'enrollments' AND u.column_name = 'exception_note_enc' AND u.row_id = enrollments.application_id);
ALTER TABLE enrollments DROP COLUMN landline_enc;
ALTER TABLE enrollments DROP COLUMN exception_note_enc;

ALTER TABLE efolder_accounts ADD COLUMN gender TEXT NOT NULL DEFAULT 'female' CHECK (gender IN ('female', 'male'));
UPDATE efolder_accounts SET gender = (SELECT u.value FROM unsealed_values u WHERE u.table_name = 'efolder_accounts' AND u.column_name = 'gender_enc' AND u.row_id = efolder_accounts.id)
WHERE id IN (SELECT row_id FROM unsealed_values WHERE table_name = 'efolder_accounts' AND column_name = 'gender_enc');
ALTER TABLE efolder_accounts DROP COLUMN gender_enc;

DROP TABLE unsealed_values;
