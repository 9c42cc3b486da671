-- Servers, by the owner name they write in the ledger: when each started
-- and when it stopped gracefully (Unix microseconds). A void of a cached
-- number leased to another server that has not stopped is refused: that
-- server may not have handed it out yet.
CREATE TABLE allot_servers (
    owner       TEXT PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    stopped_at  INTEGER
);
CREATE INDEX allot_sequence_ledger_taken ON allot_sequence_ledger (sequence, period, first) WHERE kind IN ('issued', 'leased');
