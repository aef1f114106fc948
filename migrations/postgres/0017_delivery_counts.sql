-- Issue 25: how many deliveries of each broadcast are in each state, kept by triggers as the
-- deliveries change instead of counted (postgres dialect; migrations/sqlite has its twin).
-- Progress is shown every second, and counting the rows of a broadcast of 100,000 each time
-- (with the dead versions of every row it had, until a vacuum) made its cost grow with the
-- square of its size. One trigger per statement: a claim or a batch of outcomes changes the
-- counts once. The counts are changed in the order of their key, so that two statements
-- changing the same counts wait for each other instead of deadlocking; a statement that
-- changes no state (a read receipt) changes no count and takes no lock.
CREATE TABLE delivery_counts (
    broadcast_id BIGINT NOT NULL,
    state        TEXT   NOT NULL,
    n            BIGINT NOT NULL,
    PRIMARY KEY (broadcast_id, state)
);

INSERT INTO delivery_counts (broadcast_id, state, n)
    SELECT broadcast_id, state, COUNT(*) FROM deliveries GROUP BY broadcast_id, state;

CREATE FUNCTION delivery_counts_on_insert() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_counts (broadcast_id, state, n)
    SELECT broadcast_id, state, COUNT(*) FROM new_rows GROUP BY broadcast_id, state ORDER BY broadcast_id, state
    ON CONFLICT (broadcast_id, state) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION delivery_counts_on_update() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_counts (broadcast_id, state, n)
    SELECT broadcast_id, state, SUM(change) FROM (
        SELECT broadcast_id, state, 1 AS change FROM new_rows
        UNION ALL SELECT broadcast_id, state, -1 FROM old_rows
    ) changes GROUP BY broadcast_id, state HAVING SUM(change) <> 0 ORDER BY broadcast_id, state
    ON CONFLICT (broadcast_id, state) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION delivery_counts_on_delete() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_counts (broadcast_id, state, n)
    SELECT broadcast_id, state, -COUNT(*) FROM old_rows GROUP BY broadcast_id, state ORDER BY broadcast_id, state
    ON CONFLICT (broadcast_id, state) DO UPDATE SET n = delivery_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER delivery_counts_on_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_on_insert();
CREATE TRIGGER delivery_counts_on_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_on_update();
CREATE TRIGGER delivery_counts_on_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_on_delete();
