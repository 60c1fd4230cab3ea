-- The images of one file of several series (an SVS's slide, thumbnail,
-- label and macro; an OME-TIFF's images) name the file's first image, so
-- that each lists its siblings. NULL for an image that is its file's only
-- one. Deleting one leaves the others.
ALTER TABLE images ADD COLUMN series_of INTEGER;
CREATE INDEX images_series_of ON images (series_of);
