-- Issue 25: the index of deliveries by state and due time (deliveries_due) is replaced by one of
-- the deliveries being sent, by lease. PostgreSQL chose deliveries_due for the claim of the next
-- due deliveries, where its entries of every delivery claimed before (dead until a vacuum) were
-- read again in each claim; the claim now has only deliveries_by_broadcast to read, in its order.
-- What deliveries_due served: expired leases (this index), and whether a user was ever delivered
-- to (looked up per broadcast by key).
DROP INDEX deliveries_due;
CREATE INDEX deliveries_leases ON deliveries (claimed_until) WHERE state = 'sending';
