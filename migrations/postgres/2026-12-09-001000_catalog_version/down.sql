DROP TRIGGER holidays_catalog_version ON holidays;
DROP TRIGGER fee_rates_catalog_version ON fee_rates;
DROP TRIGGER offices_catalog_version ON offices;
DROP FUNCTION bump_catalog_version();
DROP TABLE catalog_version;
