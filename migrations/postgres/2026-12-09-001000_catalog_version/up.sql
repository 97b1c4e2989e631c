-- The catalog's version (docs/decisions/0013-catalog-cache.md): one row, moved by a trigger
-- with every change to offices, fee rates and holidays, so that each instance's in-memory
-- copy of them knows when it is stale, whatever path wrote the change.
CREATE TABLE catalog_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER offices_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON offices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
CREATE TRIGGER fee_rates_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON fee_rates
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
CREATE TRIGGER holidays_catalog_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON holidays
    FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
