DROP TABLE staff_users;
