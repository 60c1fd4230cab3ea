-- One row per image. A row is 'pending' while its pixels are being written
-- and becomes 'ready' only once pixels and metadata are complete, so readers
-- never see a half-written image. BIGSERIAL ids are never reused.
CREATE TABLE images (
    id                BIGSERIAL PRIMARY KEY,
    state             TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ready')),
    kind              TEXT    NOT NULL DEFAULT 'upload',
    source_image_id   TEXT,
    original_filename TEXT,
    byte_size         BIGINT  NOT NULL DEFAULT 0,
    created_at        TEXT    NOT NULL,
    dtype             TEXT,
    size_t            BIGINT,
    size_z            BIGINT,
    size_c            BIGINT,
    size_y            BIGINT,
    size_x            BIGINT,
    flavour           TEXT,
    metadata          TEXT,
    statistics        TEXT
);

CREATE INDEX images_state ON images (state);
