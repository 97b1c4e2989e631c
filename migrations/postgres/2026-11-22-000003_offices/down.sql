DROP TABLE slots;
DROP TABLE holidays;
DROP TABLE office_closures;
DROP TABLE capacity_overrides;
DROP TABLE office_capacity;
DROP TABLE offices;
