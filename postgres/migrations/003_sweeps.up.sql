-- When each server last swept expired holds. The audit uses it to tell a
-- hold the sweeper missed (a violation) from one no sweeper has run for
-- yet (every server stopped).
CREATE TABLE allot_sweeps (
    owner     text PRIMARY KEY,
    swept_at  timestamptz NOT NULL
);
