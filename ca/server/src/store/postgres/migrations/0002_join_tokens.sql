-- One-time join tokens (a node's `signet-node join`), kept by the SHA-256
-- of the token, never the token itself. A token is spent by one UPDATE that
-- only an unspent, unexpired row of the same subject matches, so two
-- replicas can never both accept it. The invite itself is a log entry;
-- this table only makes "at most once" hold across replicas.
CREATE TABLE join_tokens (
    token_sha256 bytea PRIMARY KEY CHECK (length(token_sha256) = 32),
    subject text NOT NULL,
    expires_at bigint NOT NULL CHECK (expires_at > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    spent_at timestamptz
);
