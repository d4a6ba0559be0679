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
    session_next_hash TEXT,               -- its successor, sent but not yet used
    live_tunnel   TEXT,                   -- the tunnel that holds the console now
    idle_since    REAL,                   -- no tunnel since then; reconnect window runs
    up_at         REAL,                   -- the first frame without an error: console up
    power         INTEGER,                -- 1: it may switch its target's power
    follows       INTEGER,                -- 1: its agent is asked again at each connect
    sink          TEXT NOT NULL DEFAULT 'direct',
    sink_ref      TEXT,                   -- e.g. the Guacamole connection id
    sink_state    TEXT,                   -- provisioning, ready, removed
    power_target  TEXT                    -- sealed: the target as asked (power, follows)
);
CREATE INDEX IF NOT EXISTS console_grant_open ON console_grant (closed_at, deadline);

-- Broker messages answered: a redelivery after a lost ack is not answered twice.
CREATE TABLE IF NOT EXISTS job_reply (
    job_id      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    replied_at  REAL NOT NULL,
    PRIMARY KEY (job_id, message_id)
);

-- What happened to each console (audit): created, consumed, extended, closed, tunnel_started,
-- tunnel_ended and kinds other features add. data is a JSON object, never a token or password.
CREATE TABLE IF NOT EXISTS console_event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    console_id  TEXT NOT NULL,
    at          REAL NOT NULL,
    kind        TEXT NOT NULL,
    instance    TEXT NOT NULL,            -- the instance that wrote it
    data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_event_console ON console_event (console_id, id);

-- Live tunnels as their instance last reported them (GET /api/v1/sessions).
CREATE TABLE IF NOT EXISTS console_tunnel (
    tunnel_id       TEXT PRIMARY KEY,
    console_id      TEXT NOT NULL,
    instance        TEXT NOT NULL,
    client_address  TEXT,
    user_agent      TEXT,
    started_at      REAL NOT NULL,
    bytes_out       INTEGER NOT NULL,     -- to the browser
    bytes_in        INTEGER NOT NULL,     -- from the browser
    seen_at         REAL NOT NULL         -- when the counts were reported
);
CREATE INDEX IF NOT EXISTS console_tunnel_console ON console_tunnel (console_id);
-- Links into a live console for someone else (a share: mode view or control) and one-time
-- links to a console's recording (mode playback). Tokens and secrets only as SHA-256.
CREATE TABLE IF NOT EXISTS console_share (
    id            TEXT PRIMARY KEY,
    console_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,          -- view, control, playback
    token_hash    TEXT NOT NULL UNIQUE,
    session_hash  TEXT,                   -- the viewer's page secret, set on first use
    created_by    TEXT NOT NULL,
    created_at    REAL NOT NULL,
    use_by        REAL NOT NULL,
    consumed_at   REAL,
    viewer        TEXT,                   -- where the link was opened from
    live_tunnel   TEXT,                   -- the viewer's tunnel now, if any
    ended_at      REAL,
    end_reason    TEXT
);
CREATE INDEX IF NOT EXISTS console_share_console ON console_share (console_id);

-- The guacd connection a console's owner holds now: where shares join it.
CREATE TABLE IF NOT EXISTS console_live (
    console_id    TEXT PRIMARY KEY,
    guacd_host    TEXT NOT NULL,
    guacd_port    INTEGER NOT NULL,
    connection_id TEXT NOT NULL,
    since         REAL NOT NULL
);
