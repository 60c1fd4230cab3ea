-- One row per image. A row is 'pending' while its pixels are being written
-- and becomes 'ready' only once pixels and metadata are complete, so readers
-- never see a half-written image. AUTOINCREMENT keeps ids unique forever,
-- even after the newest image is deleted.
CREATE TABLE images (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    state             TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready')),
    kind              TEXT    NOT NULL DEFAULT 'upload',
    source_image_id   TEXT,
    original_filename TEXT,
    byte_size         INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT    NOT NULL,
    dtype             TEXT,
    size_t            INTEGER,
    size_z            INTEGER,
    size_c            INTEGER,
    size_y            INTEGER,
    size_x            INTEGER,
    flavour           TEXT,
    metadata          TEXT,
    statistics        TEXT
);

CREATE INDEX images_state ON images (state);
