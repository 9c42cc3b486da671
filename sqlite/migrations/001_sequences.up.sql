-- Sequences: configuration, one counter row per reset period, the ledger of
-- every range taken or voided, and idempotency keys.
CREATE TABLE allot_sequences (
    name        text PRIMARY KEY,
    format      text NOT NULL,
    start       INTEGER NOT NULL CHECK (start >= 0),
    max         INTEGER NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('cached', 'gapless')),
    block_size  INTEGER NOT NULL CHECK (block_size >= 1),
    reset       text NOT NULL CHECK (reset IN ('never', 'yearly', 'monthly', 'daily')),
    timezone    text NOT NULL,
    warn_at     REAL NOT NULL CHECK (warn_at > 0 AND warn_at <= 1),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK (max >= start)
);

-- last is the highest number taken (issued or leased) in the period. max
-- is the sequence's max, kept here so the database checks every counter
-- move against it with a plain CHECK, at no cost on the hot path.
CREATE TABLE allot_sequence_counters (
    sequence  text NOT NULL REFERENCES allot_sequences (name),
    period    text NOT NULL,
    last      INTEGER NOT NULL,
    max       INTEGER NOT NULL,
    voided    INTEGER NOT NULL DEFAULT 0 CHECK (voided >= 0),
    PRIMARY KEY (sequence, period),
    CHECK (last <= max)
);

CREATE TABLE allot_sequence_ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sequence    text NOT NULL,
    period      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('issued', 'leased', 'voided')),
    first       INTEGER NOT NULL,
    last        INTEGER NOT NULL,
    reason      text NOT NULL DEFAULT '',
    owner       text NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    CHECK (last >= first)
);
CREATE INDEX allot_sequence_ledger_seq_id ON allot_sequence_ledger (sequence, id);
CREATE INDEX allot_sequence_ledger_voids ON allot_sequence_ledger (sequence, period, first) WHERE kind = 'voided';

CREATE TABLE allot_idempotency (
    scope         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    period        text NOT NULL DEFAULT '',
    date          text NOT NULL DEFAULT '',
    first         INTEGER NOT NULL DEFAULT 0,
    last          INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX allot_idempotency_created ON allot_idempotency (created_at);

-- The database itself refuses a counter that moves backwards, which would
-- hand numbers out twice. (Passing max is the CHECK above.)
CREATE TRIGGER allot_sequence_counter_back BEFORE UPDATE OF last ON allot_sequence_counters
WHEN NEW.last < OLD.last
BEGIN
    SELECT RAISE(ABORT, 'allot: a sequence counter may not move back');
END;
