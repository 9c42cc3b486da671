-- When a server last swept expired holds (one row: the latest sweep). The
-- audit uses it to tell a hold the sweeper missed (a violation) from one no
-- sweeper has run for yet (every server stopped).
CREATE TABLE allot_sweeps (
    id        integer PRIMARY KEY CHECK (id = 1),
    owner     text NOT NULL,
    swept_at  timestamptz NOT NULL
);
