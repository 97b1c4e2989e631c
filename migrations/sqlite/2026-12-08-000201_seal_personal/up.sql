-- Personal fields sealed at rest like the e-folder's (issue 24). An application's birth
-- dates, gender, religion, mother's name and registry names become one AES-GCM value
-- (`personal_enc`); an enrollment's landline and exception note and an e-folder
-- account's gender are sealed too.
--
-- SQL cannot encrypt with the application's key, so the clear values move into
-- `unsealed_values` and the clear columns are dropped here; the server seals every
-- waiting value when it starts (before it serves) and deletes it from `unsealed_values`
-- (`persistence::unsealed::seal_waiting`). `ncr migrate` does the same when keys are
-- configured.
CREATE TABLE unsealed_values (
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    column_name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (table_name, row_id, column_name)
);

ALTER TABLE applications ADD COLUMN personal_enc TEXT NOT NULL DEFAULT '';
INSERT INTO unsealed_values (table_name, row_id, column_name, value)
SELECT 'applications', id, 'personal_enc', json_object(
    'birth_date', birth_date, 'birth_date_jalali', birth_date_jalali, 'birth_date_hijri', birth_date_hijri,
    'gender', gender, 'religion', religion, 'mother_name', mother_name,
    'first_name', first_name, 'last_name', last_name)
FROM applications;
ALTER TABLE applications DROP COLUMN birth_date;
ALTER TABLE applications DROP COLUMN birth_date_jalali;
ALTER TABLE applications DROP COLUMN birth_date_hijri;
ALTER TABLE applications DROP COLUMN gender;
ALTER TABLE applications DROP COLUMN religion;
ALTER TABLE applications DROP COLUMN mother_name;
ALTER TABLE applications DROP COLUMN first_name;
ALTER TABLE applications DROP COLUMN last_name;

ALTER TABLE enrollments ADD COLUMN landline_enc TEXT NOT NULL DEFAULT '';
ALTER TABLE enrollments ADD COLUMN exception_note_enc TEXT;
INSERT INTO unsealed_values (table_name, row_id, column_name, value)
SELECT 'enrollments', application_id, 'landline_enc', landline FROM enrollments;
INSERT INTO unsealed_values (table_name, row_id, column_name, value)
SELECT 'enrollments', application_id, 'exception_note_enc', exception_note FROM enrollments
WHERE exception_note IS NOT NULL;
ALTER TABLE enrollments DROP COLUMN landline;
ALTER TABLE enrollments DROP COLUMN exception_note;

ALTER TABLE efolder_accounts ADD COLUMN gender_enc TEXT NOT NULL DEFAULT '';
INSERT INTO unsealed_values (table_name, row_id, column_name, value)
SELECT 'efolder_accounts', id, 'gender_enc', gender FROM efolder_accounts;
ALTER TABLE efolder_accounts DROP COLUMN gender;
