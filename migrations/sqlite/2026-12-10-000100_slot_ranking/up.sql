-- A search of one city and date reads one page of an index instead of every slot of the
-- city (docs/decisions/0014-indexed-search.md). `rank_key` is domain::offices::rank_key:
-- the free ratio truncated to nine decimals times 2^31, plus the free seats; NULL when the
-- shift offers no seat (closed, or no capacity), which ranking leaves out. SQLite adds
-- only virtual generated columns to an existing table; the index stores its value.
ALTER TABLE slots ADD COLUMN rank_key BIGINT GENERATED ALWAYS AS (
    CASE WHEN closed OR capacity <= 0 THEN NULL
         ELSE (capacity - taken) * 1000000000 / capacity * 2147483648 + (capacity - taken)
    END) VIRTUAL;
-- The order of domain::offices::rank without a neighbourhood: key, then office id (byte
-- order), then morning before afternoon.
CREATE INDEX slots_ranked ON slots (date, city_code, rank_key DESC, office_id, shift DESC)
    WHERE rank_key IS NOT NULL;

-- How many ranked shifts each city has on each date: the search's `total`, kept by
-- triggers. It moves only when a shift opens or closes (or moves city), never on a hold.
CREATE TABLE slot_counts (
    date DATE NOT NULL,
    city_code TEXT NOT NULL,
    ranked INTEGER NOT NULL,
    PRIMARY KEY (date, city_code)
);
INSERT INTO slot_counts (date, city_code, ranked)
    SELECT date, city_code, COUNT(*) FROM slots WHERE NOT closed AND capacity > 0 GROUP BY date, city_code;

CREATE TRIGGER slots_counts_inserted AFTER INSERT ON slots WHEN NOT NEW.closed AND NEW.capacity > 0 BEGIN
    INSERT INTO slot_counts (date, city_code, ranked) VALUES (NEW.date, NEW.city_code, 1)
        ON CONFLICT (date, city_code) DO UPDATE SET ranked = ranked + 1;
END;
CREATE TRIGGER slots_counts_deleted AFTER DELETE ON slots WHEN NOT OLD.closed AND OLD.capacity > 0 BEGIN
    UPDATE slot_counts SET ranked = ranked - 1 WHERE date = OLD.date AND city_code = OLD.city_code;
END;
-- Holds change only `taken`: these triggers do not fire for them.
CREATE TRIGGER slots_counts_updated_old AFTER UPDATE OF closed, capacity, city_code, date ON slots
    WHEN NOT OLD.closed AND OLD.capacity > 0 BEGIN
    UPDATE slot_counts SET ranked = ranked - 1 WHERE date = OLD.date AND city_code = OLD.city_code;
END;
CREATE TRIGGER slots_counts_updated_new AFTER UPDATE OF closed, capacity, city_code, date ON slots
    WHEN NOT NEW.closed AND NEW.capacity > 0 BEGIN
    INSERT INTO slot_counts (date, city_code, ranked) VALUES (NEW.date, NEW.city_code, 1)
        ON CONFLICT (date, city_code) DO UPDATE SET ranked = ranked + 1;
END;
