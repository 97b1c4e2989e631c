DROP TABLE efolder_reset_codes;
DROP TABLE efolder_accounts;
