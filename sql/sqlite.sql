-- guacbridge's own tables, SQLite (the default, single-instance grant store).
-- Times are UNIX seconds (REAL). Tokens are stored only as SHA-256 hex digests.
CREATE TABLE IF NOT EXISTS console_grant (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    extra_hash    TEXT,
    protocol      TEXT NOT NULL,
    params        TEXT NOT NULL,          -- JSON object of guacd parameters
    owner         TEXT NOT NULL,
    end_user      TEXT,
    created_at    REAL NOT NULL,
    use_by        REAL NOT NULL,
    duration      INTEGER NOT NULL,
    max_duration  INTEGER NOT NULL,
    consumed_at   REAL,
    deadline      REAL,
    closed_at     REAL,
    close_reason  TEXT,
    session_hash  TEXT,                   -- the console page's reconnect secret (SHA-256)
    live_tunnel   TEXT,                   -- the tunnel that holds the console now
    idle_since    REAL,                   -- no tunnel since then; reconnect window runs
    up_at         REAL,                   -- the first frame without an error: console up
    sink          TEXT NOT NULL DEFAULT 'direct',
    sink_ref      TEXT,                   -- e.g. the Guacamole connection id
    sink_state    TEXT                    -- provisioning, ready, removed
);
CREATE INDEX IF NOT EXISTS console_grant_open ON console_grant (closed_at, deadline);

-- Broker messages answered: a redelivery after a lost ack is not answered twice.
CREATE TABLE IF NOT EXISTS job_reply (
    job_id      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    replied_at  REAL NOT NULL,
    PRIMARY KEY (job_id, message_id)
);
