-- The metadata text each file carried (OME-XML, ImageJ description,
-- ScanImage header), kept as written and served by
-- /images/{id}/original-metadata. Apart from the images table so that
-- listing images never reads it.
CREATE TABLE original_metadata (
    image_id BIGINT PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    format   TEXT NOT NULL,
    text     TEXT NOT NULL
);
