-- The log, shared by every CA replica. Appends lock the one row of
-- log_head, so they are serialized across replicas; the index of each entry
-- is computed inside that transaction from the latest checkpoint.

-- The row every append locks (SELECT ... FOR UPDATE): one writer at a time.
CREATE TABLE log_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id)
);
INSERT INTO log_head VALUES (true);

-- Entries in canonical JSON, at dense indices from 0.
CREATE TABLE log_entries (
    idx bigint PRIMARY KEY CHECK (idx >= 0),
    body bytea NOT NULL
);

-- Complete-subtree hashes of the Merkle tree (tiles and proofs).
CREATE TABLE log_nodes (
    level integer NOT NULL CHECK (level >= 0 AND level < 64),
    idx bigint NOT NULL CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Every serial number ever used, per namespace ("ssh:…", "x509:…").
CREATE TABLE log_serials (
    key text PRIMARY KEY,
    idx bigint NOT NULL
);

-- Every checkpoint signed, one per tree size: the primary key makes two
-- different checkpoints for one size impossible, whichever replica signs.
CREATE TABLE log_checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 0),
    root bytea NOT NULL CHECK (length(root) = 32),
    note text NOT NULL,
    signed_by text NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now()
);
