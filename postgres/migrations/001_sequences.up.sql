-- Sequences: configuration, one counter row per reset period, the ledger of
-- every range taken or voided, and idempotency keys.
CREATE TABLE allot_sequences (
    name        text PRIMARY KEY,
    format      text NOT NULL,
    start       bigint NOT NULL CHECK (start >= 0),
    max         bigint NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('cached', 'gapless')),
    block_size  bigint NOT NULL CHECK (block_size >= 1),
    reset       text NOT NULL CHECK (reset IN ('never', 'yearly', 'monthly', 'daily')),
    timezone    text NOT NULL,
    warn_at     double precision NOT NULL CHECK (warn_at > 0 AND warn_at <= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (max >= start)
);

-- last is the highest number taken (issued or leased) in the period. max
-- is the sequence's max, kept here so the database checks every counter
-- move against it with a plain CHECK, at no cost on the hot path.
CREATE TABLE allot_sequence_counters (
    sequence  text NOT NULL REFERENCES allot_sequences (name),
    period    text NOT NULL,
    last      bigint NOT NULL,
    max       bigint NOT NULL,
    voided    bigint NOT NULL DEFAULT 0 CHECK (voided >= 0),
    PRIMARY KEY (sequence, period),
    CHECK (last <= max)
);

CREATE TABLE allot_sequence_ledger (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sequence    text NOT NULL,
    period      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('issued', 'leased', 'voided')),
    first       bigint NOT NULL,
    last        bigint NOT NULL,
    reason      text NOT NULL DEFAULT '',
    owner       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
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
    first         bigint NOT NULL DEFAULT 0,
    last          bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX allot_idempotency_created ON allot_idempotency (created_at);

-- The database itself refuses a counter that moves backwards, which would
-- hand numbers out twice. (Passing max is the CHECK above.)
CREATE FUNCTION allot_sequence_counter_back() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'allot: counter of %[%] may not move back from % to %', NEW.sequence, NEW.period, OLD.last, NEW.last
        USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER allot_sequence_counter_back BEFORE UPDATE ON allot_sequence_counters
    FOR EACH ROW WHEN (NEW.last < OLD.last) EXECUTE FUNCTION allot_sequence_counter_back();
