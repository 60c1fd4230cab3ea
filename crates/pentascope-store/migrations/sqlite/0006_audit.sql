-- The audit trail: who (a user, the id of their key, or a signed link
-- named by its image and expiry; never a secret) did what to which object,
-- when and from which address (NULL: the command line). Rows older than
-- --audit-retention are swept away.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT   NOT NULL,
    user_name   TEXT,
    key_id      INTEGER,
    link        TEXT,
    address     TEXT,
    action      TEXT   NOT NULL,
    object_kind TEXT   NOT NULL,
    object_id   TEXT   NOT NULL,
    detail      TEXT   NOT NULL DEFAULT ''
);
-- pages are newest first by id; each filter has its index
CREATE INDEX audit_by_at ON audit (at);
CREATE INDEX audit_by_user ON audit (user_name, id);
CREATE INDEX audit_by_action ON audit (action, id);
CREATE INDEX audit_by_object ON audit (object_kind, object_id, id);
