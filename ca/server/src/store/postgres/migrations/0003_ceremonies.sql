-- Ceremonies in progress: a sign-in (/v1/certs/begin → finish) or an
-- enrollment (/v1/enroll/begin → finish) waiting for its WebAuthn answer,
-- so begin on one replica and finish on another works. Keyed by the
-- SHA-256 of the ceremony id (the id itself is never stored). Single use:
-- finish takes a row with DELETE ... RETURNING, so two replicas cannot both
-- get it; expired rows are refused and swept.
CREATE TABLE ceremonies (
    id_sha256 bytea PRIMARY KEY CHECK (length(id_sha256) = 32),
    kind text NOT NULL CHECK (kind IN ('cert', 'enroll')),
    -- The ceremony as JSON (serde), parsed strictly at finish: a row that
    -- does not parse is refused, never acted on.
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX ceremonies_expires_at ON ceremonies (expires_at);
