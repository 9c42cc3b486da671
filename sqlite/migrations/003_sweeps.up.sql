-- When a server last swept expired holds (one row: the latest sweep; Unix
-- microseconds). The audit uses it to tell a hold the sweeper missed (a
-- violation) from one no sweeper has run for yet (every server stopped).
CREATE TABLE allot_sweeps (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    owner     TEXT NOT NULL,
    swept_at  INTEGER NOT NULL
);
