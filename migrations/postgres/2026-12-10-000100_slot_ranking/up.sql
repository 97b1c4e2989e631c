-- A search of one city and date reads one page of an index instead of every slot of the
-- city (docs/decisions/0014-indexed-search.md). `rank_key` is domain::offices::rank_key:
-- the free ratio truncated to nine decimals times 2^31, plus the free seats; NULL when the
-- shift offers no seat (closed, or no capacity), which ranking leaves out.
ALTER TABLE slots ADD COLUMN rank_key BIGINT GENERATED ALWAYS AS (
    CASE WHEN closed OR capacity <= 0 THEN NULL
         ELSE (capacity - taken)::BIGINT * 1000000000 / capacity * 2147483648 + (capacity - taken)
    END) STORED;
-- The order of domain::offices::rank without a neighbourhood: key, then office id (byte
-- order, as Rust compares strings), then morning before afternoon.
CREATE INDEX slots_ranked ON slots (date, city_code, rank_key DESC, office_id COLLATE "C", shift DESC)
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

CREATE FUNCTION slot_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO slot_counts (date, city_code, ranked)
        SELECT date, city_code, COUNT(*) FROM new_slots WHERE NOT closed AND capacity > 0 GROUP BY date, city_code
        ON CONFLICT (date, city_code) DO UPDATE SET ranked = slot_counts.ranked + EXCLUDED.ranked;
    RETURN NULL;
END
$$;
CREATE TRIGGER slots_counts_inserted AFTER INSERT ON slots REFERENCING NEW TABLE AS new_slots
    FOR EACH STATEMENT EXECUTE FUNCTION slot_counts_inserted();

CREATE FUNCTION slot_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE slot_counts c SET ranked = c.ranked - g.n
      FROM (SELECT date, city_code, COUNT(*) AS n FROM old_slots WHERE NOT closed AND capacity > 0
             GROUP BY date, city_code) g
     WHERE c.date = g.date AND c.city_code = g.city_code;
    RETURN NULL;
END
$$;
CREATE TRIGGER slots_counts_deleted AFTER DELETE ON slots REFERENCING OLD TABLE AS old_slots
    FOR EACH STATEMENT EXECUTE FUNCTION slot_counts_deleted();

CREATE FUNCTION slot_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT OLD.closed AND OLD.capacity > 0 THEN
        UPDATE slot_counts SET ranked = ranked - 1 WHERE date = OLD.date AND city_code = OLD.city_code;
    END IF;
    IF NOT NEW.closed AND NEW.capacity > 0 THEN
        INSERT INTO slot_counts (date, city_code, ranked) VALUES (NEW.date, NEW.city_code, 1)
            ON CONFLICT (date, city_code) DO UPDATE SET ranked = slot_counts.ranked + 1;
    END IF;
    RETURN NULL;
END
$$;
-- Holds change only `taken`: this trigger does not fire for them.
CREATE TRIGGER slots_counts_updated AFTER UPDATE OF closed, capacity, city_code, date ON slots FOR EACH ROW
    WHEN ((NOT OLD.closed AND OLD.capacity > 0) IS DISTINCT FROM (NOT NEW.closed AND NEW.capacity > 0)
          OR OLD.city_code IS DISTINCT FROM NEW.city_code OR OLD.date IS DISTINCT FROM NEW.date)
    EXECUTE FUNCTION slot_counts_updated();
