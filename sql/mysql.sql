-- guacbridge's own tables, MySQL/MariaDB (grants shared by several instances).
-- Times are UNIX seconds. Tokens and secrets are stored only as SHA-256 hex digests.
CREATE TABLE IF NOT EXISTS console_grant (
    id            CHAR(36) NOT NULL PRIMARY KEY,
    token_hash    CHAR(64) NOT NULL UNIQUE,
    extra_hash    CHAR(64),
    protocol      VARCHAR(32) NOT NULL,
    params        TEXT NOT NULL,              -- JSON object of guacd parameters
    owner         VARCHAR(128) NOT NULL,
    end_user      VARCHAR(128),
    created_at    DOUBLE NOT NULL,
    use_by        DOUBLE NOT NULL,
    duration      INT NOT NULL,
    max_duration  INT NOT NULL,
    consumed_at   DOUBLE,
    deadline      DOUBLE,
    closed_at     DOUBLE,
    close_reason  VARCHAR(255),
    session_hash  CHAR(64),                   -- the console page's reconnect secret
    session_next_hash CHAR(64),               -- its successor, sent but not yet used
    live_tunnel   CHAR(36),                   -- the tunnel that holds the console now
    idle_since    DOUBLE,                     -- no tunnel since then; reconnect window runs
    up_at         DOUBLE,                     -- the first frame without an error: console up
    power         TINYINT,                    -- 1: it may switch its target's power
    follows       TINYINT,                    -- 1: its agent is asked again at each connect
    sink          VARCHAR(16) NOT NULL DEFAULT 'direct',
    sink_ref      VARCHAR(64),                -- e.g. the Guacamole connection id
    sink_state    VARCHAR(16),                -- provisioning, ready, removed
    power_target  TEXT,                       -- sealed: the target as asked (power, follows)
    KEY console_grant_open (closed_at, deadline)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Broker messages answered: a redelivery after a lost ack is not answered twice.
CREATE TABLE IF NOT EXISTS job_reply (
    job_id      VARCHAR(128) NOT NULL,
    message_id  VARCHAR(128) NOT NULL,
    replied_at  DOUBLE NOT NULL,
    PRIMARY KEY (job_id, message_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- What happened to each console (audit): created, consumed, extended, closed, tunnel_started,
-- tunnel_ended and kinds other features add. data is a JSON object, never a token or password.
CREATE TABLE IF NOT EXISTS console_event (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    console_id  CHAR(36) NOT NULL,
    at          DOUBLE NOT NULL,
    kind        VARCHAR(32) NOT NULL,
    instance    VARCHAR(64) NOT NULL,         -- the instance that wrote it
    data        TEXT NOT NULL,
    KEY console_event_console (console_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Live tunnels as their instance last reported them (GET /api/v1/sessions).
CREATE TABLE IF NOT EXISTS console_tunnel (
    tunnel_id       CHAR(36) NOT NULL PRIMARY KEY,
    console_id      CHAR(36) NOT NULL,
    instance        VARCHAR(64) NOT NULL,
    client_address  VARCHAR(64),
    user_agent      VARCHAR(512),
    started_at      DOUBLE NOT NULL,
    bytes_out       BIGINT NOT NULL,              -- to the browser
    bytes_in        BIGINT NOT NULL,              -- from the browser
    seen_at         DOUBLE NOT NULL,              -- when the counts were reported
    KEY console_tunnel_console (console_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Links into a live console for someone else (a share: mode view or control) and one-time
-- links to a console's recording (mode playback). Tokens and secrets only as SHA-256.
CREATE TABLE IF NOT EXISTS console_share (
    id            CHAR(36) NOT NULL PRIMARY KEY,
    console_id    CHAR(36) NOT NULL,
    mode          VARCHAR(16) NOT NULL,       -- view, control, playback
    token_hash    CHAR(64) NOT NULL UNIQUE,
    session_hash  CHAR(64),                   -- the viewer's page secret, set on first use
    created_by    VARCHAR(128) NOT NULL,
    created_at    DOUBLE NOT NULL,
    use_by        DOUBLE NOT NULL,
    consumed_at   DOUBLE,
    viewer        VARCHAR(255),               -- where the link was opened from
    live_tunnel   CHAR(36),                   -- the viewer's tunnel now, if any
    ended_at      DOUBLE,
    end_reason    VARCHAR(255),
    KEY console_share_console (console_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The guacd connection a console's owner holds now: where shares join it.
CREATE TABLE IF NOT EXISTS console_live (
    console_id    CHAR(36) NOT NULL PRIMARY KEY,
    guacd_host    VARCHAR(255) NOT NULL,
    guacd_port    INT NOT NULL,
    connection_id VARCHAR(64) NOT NULL,
    since         DOUBLE NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
