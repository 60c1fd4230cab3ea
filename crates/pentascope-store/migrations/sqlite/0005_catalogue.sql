-- The catalogue: each image's name, description, tags and key-value
-- annotations; datasets that group images; a full-text index over all of
-- it. Tags and annotations are kept twice: as JSON on the image row (read
-- with the record) and as rows of their own (filtered and counted).
ALTER TABLE images ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE images ADD COLUMN annotations TEXT NOT NULL DEFAULT '[]';
UPDATE images SET name = COALESCE(original_filename, 'image_' || id);

-- one index per sort order, so that a page costs the same wherever it is
CREATE INDEX images_by_created ON images (state, created_at, id);
CREATE INDEX images_by_name ON images (state, name, id);
CREATE INDEX images_by_size ON images (state, byte_size, id);
CREATE INDEX images_by_owner ON images (owner, state, created_at, id);

CREATE TABLE image_tags (
    image_id BIGINT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    tag      TEXT   NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_by_tag ON image_tags (tag, image_id);

CREATE TABLE image_annotations (
    image_id BIGINT  NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_annotations_by_pair ON image_annotations (key, value, image_id);

CREATE TABLE datasets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    owner       TEXT,
    public      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TEXT    NOT NULL,
    -- the name's and description's words, lower case, space-separated
    search_doc  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX datasets_by_created ON datasets (created_at, id);
CREATE INDEX datasets_by_name ON datasets (name, id);

CREATE TABLE dataset_images (
    dataset_id BIGINT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    image_id   BIGINT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    PRIMARY KEY (dataset_id, image_id)
);
CREATE INDEX dataset_images_by_image ON dataset_images (image_id);

-- One row per published image (rowid = image id): the words of its name,
-- file name, description, channel names, tags, annotations and datasets,
-- split and lower-cased by pentascope so both backends see the same words.
-- Images published before this migration are indexed at start-up.
CREATE VIRTUAL TABLE image_search USING fts5 (doc, tokenize = 'unicode61 remove_diacritics 0');
