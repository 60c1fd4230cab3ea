-- Access control: users, API keys (only their SHA-256 is kept), the owner
-- and visibility of every image and job, and server-wide settings such as
-- the key that signs capability links. Images and jobs created while
-- access control was off have no owner: only admins (and, for public
-- images, every user) see them.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT    NOT NULL
);

CREATE TABLE tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT,
    scope         TEXT    NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    secret_sha256 TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    expires_at    BIGINT,
    last_used     TEXT,
    revoked_at    TEXT
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

ALTER TABLE images ADD COLUMN owner TEXT;
ALTER TABLE images ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE jobs ADD COLUMN owner TEXT;
