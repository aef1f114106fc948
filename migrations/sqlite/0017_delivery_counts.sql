-- Issue 25: how many deliveries of each broadcast are in each state, kept by triggers as the
-- deliveries change instead of counted. Progress is shown every second, and counting the rows
-- of a broadcast of 100,000 each time made its cost grow with the square of its size.
CREATE TABLE delivery_counts (
    broadcast_id INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (broadcast_id, state)
) WITHOUT ROWID;

INSERT INTO delivery_counts (broadcast_id, state, n)
    SELECT broadcast_id, state, COUNT(*) FROM deliveries GROUP BY broadcast_id, state;

CREATE TRIGGER delivery_counts_on_insert AFTER INSERT ON deliveries BEGIN
    INSERT OR IGNORE INTO delivery_counts (broadcast_id, state, n) VALUES (NEW.broadcast_id, NEW.state, 0);
    UPDATE delivery_counts SET n = n + 1 WHERE broadcast_id = NEW.broadcast_id AND state = NEW.state;
END;

CREATE TRIGGER delivery_counts_on_update AFTER UPDATE OF state ON deliveries
WHEN OLD.state <> NEW.state OR OLD.broadcast_id <> NEW.broadcast_id BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE broadcast_id = OLD.broadcast_id AND state = OLD.state;
    INSERT OR IGNORE INTO delivery_counts (broadcast_id, state, n) VALUES (NEW.broadcast_id, NEW.state, 0);
    UPDATE delivery_counts SET n = n + 1 WHERE broadcast_id = NEW.broadcast_id AND state = NEW.state;
END;

CREATE TRIGGER delivery_counts_on_delete AFTER DELETE ON deliveries BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE broadcast_id = OLD.broadcast_id AND state = OLD.state;
END;
