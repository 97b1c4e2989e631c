-- The catalog's version (docs/decisions/0013-catalog-cache.md): one row, moved by a trigger
-- with every change to offices, fee rates and holidays, so that each instance's in-memory
-- copy of them knows when it is stale, whatever path wrote the change.
CREATE TABLE catalog_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 1);

CREATE TRIGGER offices_catalog_insert AFTER INSERT ON offices BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER offices_catalog_update AFTER UPDATE ON offices BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER offices_catalog_delete AFTER DELETE ON offices BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER fee_rates_catalog_insert AFTER INSERT ON fee_rates BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER fee_rates_catalog_update AFTER UPDATE ON fee_rates BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER fee_rates_catalog_delete AFTER DELETE ON fee_rates BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER holidays_catalog_insert AFTER INSERT ON holidays BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER holidays_catalog_update AFTER UPDATE ON holidays BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER holidays_catalog_delete AFTER DELETE ON holidays BEGIN UPDATE catalog_version SET version = version + 1 WHERE id = 1; END;
