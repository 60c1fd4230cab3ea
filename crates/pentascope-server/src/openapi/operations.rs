//! What the API document says of each route beyond its method, path and
//! query parameter names (the route table's) and its bodies' schemas (their
//! types'): summary, description, each parameter's meaning, and which
//! answers it gives. [`crate::router::routes`] names one of these per
//! route.

use pentascope_app::access::CreatedToken;
use pentascope_app::analyze::PcaResult;
use pentascope_app::images::Statistics;
use pentascope_app::segment::SegmentResult;
use pentascope_store::records::{DatasetRecord, TokenRecord, UserRecord};
use serde_json::{json, Value};

use super::Operation;
use crate::answers::*;

/// `POST /upload`.
pub(crate) fn upload_image() -> Operation {
    Operation::new("uploadImage", "images", "Upload a TIFF image")
        .description("Uploads one TIFF file as multipart/form-data (field `file`). The file is stored as a chunked 5D TZCYX array while it arrives: where its first IFD declares the series (ImageJ `images=`, tifffile's shape, a one-image OME-XML) and a page's place is known before its bytes pass, the page is decoded and stored as it passes; the rest is spooled and read when the upload is complete, and the whole IFD chain must then agree with what was stored (422 otherwise). Per-channel statistics are computed in the same pass. The image is only listed once everything is written; a failed upload leaves nothing behind.\n\nThe axes are taken from the file's metadata (OME-XML, ImageJ, ScanImage, tifffile shaped description), tried in that order; metadata that does not match the file is ignored with a warning (see `warnings` in the metadata) and the pages are read in order. Give `axes` to say how the pages of a file without usable metadata are arranged, e.g. `TYX` for a time series or `ZCYX` for a z-stack with interleaved channels.\n\nSupported: BigTIFF and classic TIFF, strips and tiles, uncompressed, LZW, Deflate, PackBits, Zstd, LZMA, CCITT RLE/Group 3/Group 4, WebP, JPEG 2000, JPEG XL and 8-bit baseline JPEG (compression 7, with JPEGTables; grayscale, RGB, YCbCr, CMYK; old-style compression 6 where its strips are JPEG streams) compression, 1–16-bit packed, 8/16/32/64-bit integer and 32/64-bit float samples. 12-bit JPEG, other codecs and multi-file OME-TIFF datasets are rejected with 415. A ZIP archive of one dataset's files (a Micro-Manager dataset over several files, an NDTiff folder, or one TIFF) is unpacked under limits and imported as its folder would be; hostile archives are refused with 400, 413, 415 or 422 naming the reason.")
        .param(json!({
            "name": "axes",
            "in": "query",
            "required": false,
            "description": "The file's own axis order, as an alternative to the `axes` form field (the form field wins when both are given). Letters from T, Z, C, Y, X (and S for the samples of a multi-sample pixel), each at most once, ending in `YX` (optionally followed by `S`), not both C and S; case-insensitive. The letters before YX must either match the number of page axes the file's metadata implies or be a single letter for all pages (e.g. `TYX`). An empty value is the same as none.",
            "schema": {
                "$ref": "#/components/schemas/AxesString"
            },
            "example": "TZCYX"
        }))
        .raw_body(json!({
            "required": true,
            "description": "multipart/form-data with the TIFF in the field `file` (its filename is kept as `original_filename`; `upload.tif` if none is given) and optionally the field `axes`. Other fields are ignored. The largest accepted body is a server setting (default 64 GiB, `--max-upload-bytes` / `PENTASCOPE_MAX_UPLOAD_BYTES`).",
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [
                            "file"
                        ],
                        "properties": {
                            "file": {
                                "type": "string",
                                "contentMediaType": "image/tiff",
                                "description": "The TIFF file (.tif, .tiff, .ome.tif, .btf); must not be empty."
                            },
                            "axes": {
                                "allOf": [
                                    {
                                        "$ref": "#/components/schemas/AxesString"
                                    }
                                ],
                                "description": "The file's own axis order; see the `axes` query parameter. Send it before the `file` field: pages stored while the file arrived cannot be re-placed by a later field (400)."
                            },
                            "name": {
                                "type": "string",
                                "description": "The image's name (default: the file's name). Before the file."
                            },
                            "description": {
                                "type": "string",
                                "description": "Before the file."
                            },
                            "tag": {
                                "type": "array",
                                "items": {
                                    "type": "string"
                                },
                                "description": "A tag (repeatable). Before the file."
                            },
                            "annotation": {
                                "type": "array",
                                "items": {
                                    "type": "string",
                                    "pattern": "="
                                },
                                "description": "`key=value` (repeatable). Before the file."
                            },
                            "dataset": {
                                "type": "array",
                                "items": {
                                    "type": "string"
                                },
                                "description": "A dataset id, or a name of the caller's dataset (made if missing), to put the image in (repeatable). Before the file."
                            }
                        }
                    },
                    "encoding": {
                        "file": {
                            "contentType": "image/tiff, application/octet-stream"
                        },
                        "axes": {
                            "contentType": "text/plain"
                        }
                    }
                }
            }
        }))
        .error(400, "The body is not multipart/form-data, has no field `file`, the file is empty, the upload was cut off or exceeded the configured upload size, or `axes` is invalid or does not fit the file.")
        .error(413, "The image declares more than the configured limits allow (by default 2^34 samples T·Z·C·Y·X, `--max-samples` / `PENTASCOPE_MAX_SAMPLES`; also limits on plane size, number of pages, strip/tile size, metadata size and the number of series in one file, `PENTASCOPE_MAX_SERIES`).")
        .error(415, "Not a TIFF file, or a TIFF using something pentascope does not decode (old-style or 12-bit JPEG, JPEG 2000 or other unsupported compression, unsupported sample type or predictor, planes stored in other files of a multi-file OME-TIFF).")
        .error(422, "A malformed TIFF: truncated, looping or internally inconsistent.")
        .shared(&[500, 503])
        .json::<UploadResponse>(200, json!({
            "description": "The image was ingested and is available under `image_id`."
        }))
        .shared(&[401, 403, 414])
}

/// `OPTIONS /uploads`.
pub(crate) fn tus_options() -> Operation {
    Operation::new("tusOptions", "uploads", "What the server speaks (tus discovery)")
        .public()
        .answer(204, json!({
            "description": "The protocol's version, extensions, largest upload and checksum algorithm.",
            "headers": {
                "Tus-Resumable": {
                    "$ref": "#/components/headers/TusResumable"
                },
                "Tus-Version": {
                    "description": "`1.0.0`.",
                    "schema": {
                        "type": "string"
                    }
                },
                "Tus-Extension": {
                    "description": "`creation,creation-with-upload,termination,expiration,checksum`.",
                    "schema": {
                        "type": "string"
                    }
                },
                "Tus-Max-Size": {
                    "description": "The largest upload, in bytes (`--max-upload-bytes` / `PENTASCOPE_MAX_UPLOAD_BYTES`).",
                    "schema": {
                        "type": "integer"
                    }
                },
                "Tus-Checksum-Algorithm": {
                    "description": "`sha256`.",
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .shared(&[400, 401, 403, 414])
}

/// `POST /uploads`.
pub(crate) fn create_upload() -> Operation {
    Operation::new("createUpload", "uploads", "Create a resumable upload")
        .description("Creates an upload of `Upload-Length` bytes. `Upload-Metadata` (comma-separated `key base64(value)` pairs) describes it as the fields of `POST /upload` do: `filename` (the file's name, kept as `original_filename`; `upload.tif` if none), `axes`, `name`, `description`, and `tag`, `annotation`, `dataset` with one value per line; other keys are ignored. What `POST /upload` would refuse before reading the file (its size, axes, catalogue fields, datasets) is refused now. With a body (`Content-Type: application/offset+octet-stream`, the creation-with-upload extension), its bytes are the upload's first.")
        .param(tus_resumable())
        .param(json!({
            "name": "Upload-Length",
            "in": "header",
            "required": true,
            "description": "The file's size in bytes; at most the configured upload size (413).",
            "schema": {
                "type": "integer",
                "minimum": 1
            }
        }))
        .param(json!({
            "name": "Upload-Metadata",
            "in": "header",
            "required": false,
            "description": "`filename dGVzdC50aWY=,axes VFlY,tag Y2VsbHMKZml4ZWQ=`",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "Upload-Checksum",
            "in": "header",
            "required": false,
            "description": "`sha256 <base64 digest>` of this request's body: a body whose digest differs is discarded (460), as is a body that breaks off.",
            "schema": {
                "type": "string"
            }
        }))
        .raw_body(json!({
            "required": false,
            "content": {
                "application/offset+octet-stream": {
                    "schema": {
                        "type": "string",
                        "contentMediaType": "application/octet-stream"
                    }
                }
            }
        }))
        .json::<ResumableUpload>(201, json!({
            "description": "Created; `Location` is the upload's URL. The body says where the upload stands, as `GET /uploads/{id}` does; with a body that held the whole file, it holds what `POST /upload` answers too.",
            "headers": {
                "Location": {
                    "description": "`/uploads/{id}`.",
                    "schema": {
                        "type": "string"
                    }
                },
                "Upload-Offset": {
                    "$ref": "#/components/headers/UploadOffset"
                },
                "Upload-Expires": {
                    "$ref": "#/components/headers/UploadExpires"
                },
                "Tus-Resumable": {
                    "$ref": "#/components/headers/TusResumable"
                }
            }
        }))
        .error(400, "No or a malformed `Upload-Length` or `Upload-Metadata`, `Upload-Defer-Length` (not supported), an empty file, invalid `axes` or catalogue fields.")
        .error(404, "A dataset named by id does not exist.")
        .error(409, "The user has 256 unfinished uploads already.")
        .error(412, "`Tus-Resumable` is missing or not `1.0.0`; `Tus-Version` names the version spoken.")
        .error(413, "`Upload-Length` is larger than the configured maximum (`--max-upload-bytes` / `PENTASCOPE_MAX_UPLOAD_BYTES`).")
        .error(415, "A body whose `Content-Type` is not `application/offset+octet-stream`.")
        .error(460, "The body's sha256 is not the one in `Upload-Checksum`; the bytes were discarded.")
        .shared(&[401, 403, 500, 503, 414])
}

/// `HEAD /uploads/{id}`.
pub(crate) fn upload_offset() -> Operation {
    Operation::new("uploadOffset", "uploads", "Where an upload stands")
        .description("The offset to resume from. A complete upload whose ingest was interrupted by a restart is ingested again.")
        .param(tus_resumable())
        .param(upload_in_path())
        .answer(200, json!({
            "description": "The upload.",
            "headers": {
                "Upload-Offset": {
                    "$ref": "#/components/headers/UploadOffset"
                },
                "Upload-Length": {
                    "description": "The file's size.",
                    "schema": {
                        "type": "integer"
                    }
                },
                "Upload-Metadata": {
                    "description": "As sent at creation.",
                    "schema": {
                        "type": "string"
                    }
                },
                "Cache-Control": {
                    "description": "`no-store`.",
                    "schema": {
                        "type": "string"
                    }
                },
                "Upload-Expires": {
                    "$ref": "#/components/headers/UploadExpires"
                },
                "Pentascope-Image-Id": {
                    "description": "The image, once published.",
                    "schema": {
                        "type": "string"
                    }
                },
                "Tus-Resumable": {
                    "$ref": "#/components/headers/TusResumable"
                }
            }
        }))
        .answer(404, json!({
            "description": "No such upload: never created, expired, terminated, or another user's."
        }))
        .answer(412, json!({
            "description": "`Tus-Resumable` is missing or not `1.0.0`."
        }))
        .shared(&[401, 403, 500, 503, 400, 414])
}

/// `PATCH /uploads/{id}`.
pub(crate) fn append_upload() -> Operation {
    Operation::new("appendUpload", "uploads", "Send bytes of a resumable upload")
        .description("Appends the body at `Upload-Offset`, which must be the upload's offset. Bytes that arrive are flushed to disk and counted even if the request breaks off (unless `Upload-Checksum` was sent: then only a whole, matching body counts). A new request for the same upload ends one still running (its client may have gone without the connection closing). The request that brings the last byte waits until the image is published and answers 200 with what `POST /upload` answers; if that answer is lost, `GET /uploads/{id}` gives it.")
        .param(tus_resumable())
        .param(json!({
            "name": "Upload-Offset",
            "in": "header",
            "required": true,
            "description": "Where the body starts in the file.",
            "schema": {
                "type": "integer",
                "minimum": 0
            }
        }))
        .param(json!({
            "name": "Upload-Checksum",
            "in": "header",
            "required": false,
            "description": "`sha256 <base64 digest>` of this request's body: a body whose digest differs is discarded (460), as is a body that breaks off.",
            "schema": {
                "type": "string"
            }
        }))
        .param(upload_in_path())
        .raw_body(json!({
            "required": true,
            "description": "The file's bytes from `Upload-Offset` on: any number of them (a client may cut the file into chunks or send the rest in one request).",
            "content": {
                "application/offset+octet-stream": {
                    "schema": {
                        "type": "string",
                        "contentMediaType": "application/octet-stream"
                    }
                }
            }
        }))
        .answer(204, json!({
            "description": "The bytes are stored.",
            "headers": {
                "Upload-Offset": {
                    "$ref": "#/components/headers/UploadOffset"
                },
                "Upload-Expires": {
                    "$ref": "#/components/headers/UploadExpires"
                },
                "Tus-Resumable": {
                    "$ref": "#/components/headers/TusResumable"
                }
            }
        }))
        .json::<UploadResponse>(200, json!({
            "description": "This request brought the last byte: the file was ingested exactly as `POST /upload` ingests it, and this is what `POST /upload` answers.",
            "headers": {
                "Upload-Offset": {
                    "$ref": "#/components/headers/UploadOffset"
                },
                "Tus-Resumable": {
                    "$ref": "#/components/headers/TusResumable"
                }
            }
        }))
        .error(400, "No or a malformed `Upload-Offset` or `Upload-Checksum`, an unsupported checksum algorithm, or a body that runs past `Upload-Length` (what fits is kept); or, once the bytes show it, a file `POST /upload` answers 400 for (`axes` that do not fit it): the upload is removed.")
        .error(404, "No such upload: never created, expired, terminated, or another user's.")
        .error(409, "`Upload-Offset` is not the upload's offset (ask with HEAD).")
        .error(412, "`Tus-Resumable` is missing or not `1.0.0`.")
        .error(413, "The file was refused by the ingest when its bytes showed it (as `POST /upload` refuses it: 413 limits, 415 not a TIFF or unsupported, 422 malformed); the upload is removed.")
        .error(415, "The `Content-Type` is not `application/offset+octet-stream`; or, once the bytes show it, The file was refused by the ingest when its bytes showed it (as `POST /upload` refuses it: 413 limits, 415 not a TIFF or unsupported, 422 malformed); the upload is removed.")
        .error(422, "The file was refused by the ingest when its bytes showed it (as `POST /upload` refuses it: 413 limits, 415 not a TIFF or unsupported, 422 malformed); the upload is removed.")
        .error(460, "The body's sha256 is not the one in `Upload-Checksum`; the bytes were discarded.")
        .shared(&[401, 403, 500, 503, 414])
}

/// `DELETE /uploads/{id}`.
pub(crate) fn terminate_upload() -> Operation {
    Operation::new("terminateUpload", "uploads", "Terminate a resumable upload")
        .description("Removes the upload, its staged bytes and whatever its ingest had stored.")
        .param(tus_resumable())
        .param(upload_in_path())
        .answer(
            204,
            json!({
                "description": "Removed.",
                "headers": {
                    "Tus-Resumable": {
                        "$ref": "#/components/headers/TusResumable"
                    }
                }
            }),
        )
        .error(
            404,
            "No such upload: never created, expired, terminated, or another user's.",
        )
        .error(412, "`Tus-Resumable` is missing or not `1.0.0`.")
        .shared(&[401, 403, 500, 503, 400, 414])
}

/// `GET /uploads/{id}`.
pub(crate) fn get_upload() -> Operation {
    Operation::new("getUpload", "uploads", "A resumable upload and its image")
        .description("Not part of tus: where the upload stands and, once its image is published, what `POST /upload` answers (for a client whose last answer was lost). Kept until the upload expires.")
        .param(upload_in_path())
        .json::<ResumableUpload>(200, json!({
            "description": "The upload."
        }))
        .error(404, "No such upload: never created, expired, terminated, or another user's.")
        .shared(&[401, 403, 500, 503, 400, 414])
}

/// `GET /metadata`.
pub(crate) fn get_metadata() -> Operation {
    Operation::new("getMetadata", "images", "Describe an image")
        .description("Shape, sample type, channel names, physical pixel sizes, provenance and default display window of one image. Same document as `GET /images/{id}`.")
        .param(shared_param("ImageIdQuery"))
        .json::<Metadata>(200, json!({
            "description": "The image's metadata."
        }))
        .refer(400, "MissingImageId")
        .shared(&[404, 500, 503, 401, 403, 414])
}

/// `GET /slice`.
pub(crate) fn get_slice() -> Operation {
    Operation::new("getSlice", "pixels", "One 2D plane as PNG or NumPy .npy")
        .description("Returns the Height × Width plane at (`time`, `z`, `channel`) in one of three forms:\n\n- **8-bit PNG** (default, `format=png&bits=8`): for viewing. Samples are windowed to [`min`, `max`], which default to the channel's `display_min`/`display_max` — the 0.1th and 99.9th percentiles of the channel's finite samples over the **whole image** (all time points and z slices, not just this plane), so all planes of a channel share one contrast. Each sample v becomes round((v − min) / (max − min) × 255), clamped to 0–255 (halves round up); NaN becomes 0. If `max` ≤ `min` the window is a threshold: v ≥ `max` → 255, anything else → 0. Values are never truncated to 8 bits.\n- **16-bit PNG** (`bits=16`): the raw values, for integer images of up to 16 bits. uint8 and uint16 are stored as they are; PNG samples are unsigned, so int8 is stored as v + 128 and int16 as v + 32768 (subtract the offset after decoding). `min`/`max` are ignored. Images of 32/64-bit integers or floats answer 400: use `format=npy`.\n- **NumPy .npy** (`format=npy`): the exact samples in the image's own dtype, a 2D array of shape (Height, Width) in C order, little-endian, byte for byte as `numpy.save` writes it (format 1.0); read it with `numpy.load(io.BytesIO(response.content))`. `bits`, `min` and `max` are ignored.\n\nParameters are validated before the image is looked up: a malformed parameter is 400 even for an unknown image.")
        .param(shared_param("ImageIdQuery"))
        .param(json!({
            "name": "z",
            "in": "query",
            "required": false,
            "description": "Z slice index of the plane, counted from 0: valid values are 0 to Z − 1 (see `Z` in the metadata). Must be a plain non-negative integer (`1.5`, `-1`, `1e3` are rejected with 400); an index past the end is 400 with a message naming the valid range.",
            "schema": {
                "type": "integer",
                "minimum": 0,
                "default": 0
            },
            "example": 0
        }))
        .param(json!({
            "name": "time",
            "in": "query",
            "required": false,
            "description": "Time point index of the plane, counted from 0: valid values are 0 to T − 1 (see `T` in the metadata). Must be a plain non-negative integer (`1.5`, `-1`, `1e3` are rejected with 400); an index past the end is 400 with a message naming the valid range.",
            "schema": {
                "type": "integer",
                "minimum": 0,
                "default": 0
            },
            "example": 0
        }))
        .param(json!({
            "name": "channel",
            "in": "query",
            "required": false,
            "description": "Channel index of the plane, counted from 0: valid values are 0 to Channels − 1 (see `Channels` in the metadata). Must be a plain non-negative integer (`1.5`, `-1`, `1e3` are rejected with 400); an index past the end is 400 with a message naming the valid range.",
            "schema": {
                "type": "integer",
                "minimum": 0,
                "default": 0
            },
            "example": 0
        }))
        .param(json!({
            "name": "min",
            "in": "query",
            "required": false,
            "description": "Value shown as black in the 8-bit rendering (the lower end of the display window), in the image's own units. Default: the channel's `display_min` (0.1th percentile). Must be a finite number; used only for the 8-bit PNG.",
            "schema": {
                "type": "number"
            },
            "example": 100
        }))
        .param(json!({
            "name": "max",
            "in": "query",
            "required": false,
            "description": "Value shown as white in the 8-bit rendering (the upper end of the display window). Default: the channel's `display_max` (99.9th percentile). Must be a finite number; used only for the 8-bit PNG. Either bound may be given alone.",
            "schema": {
                "type": "number"
            },
            "example": 4000
        }))
        .param(json!({
            "name": "auto",
            "in": "query",
            "required": false,
            "schema": {
                "type": "string",
                "enum": [
                    "stack",
                    "plane"
                ],
                "default": "stack"
            },
            "description": "Where the default 8-bit window comes from when `min`/`max` are not given: `stack`, the channel's 0.1–99.9 percentiles over the whole image (gathered at ingest); `plane`, those of this plane alone (a dim plane of a bright stack)."
        }))
        .param(json!({
            "name": "bits",
            "in": "query",
            "required": false,
            "description": "Bit depth of the PNG: `8` for a windowed display image, `16` for the raw values of integer images of up to 16 bits (int8/int16 offset by +128/+32768). Ignored (and not checked) when `format=npy`.",
            "schema": {
                "type": "integer",
                "enum": [
                    8,
                    16
                ],
                "default": 8
            }
        }))
        .param(json!({
            "name": "format",
            "in": "query",
            "required": false,
            "description": "`png` for an image (see `bits`), `npy` for the exact samples as a NumPy .npy file in the image's dtype. Case-sensitive.",
            "schema": {
                "type": "string",
                "enum": [
                    "png",
                    "npy"
                ],
                "default": "png"
            }
        }))
        .param(shared_param("IfNoneMatch"))
        .answer(200, json!({
            "description": "The plane. `image/png` (8-bit or 16-bit grayscale, Width × Height) for `format=png`; `application/octet-stream` holding a .npy file for `format=npy`.",
            "headers": {
                "Content-Disposition": {
                    "description": "`inline; filename=\"<image_id>_t<time>_z<z>_c<channel>.png\"` (or `.npy`), e.g. `inline; filename=\"image_1_t0_z3_c1.npy\"`.",
                    "schema": {
                        "type": "string"
                    }
                },
                "ETag": {
                    "$ref": "#/components/headers/ETag"
                },
                "Cache-Control": {
                    "$ref": "#/components/headers/CacheControl"
                },
                "Last-Modified": {
                    "$ref": "#/components/headers/LastModified"
                }
            },
            "content": {
                "image/png": {
                    "schema": {
                        "type": "string",
                        "contentMediaType": "image/png",
                        "description": "Grayscale PNG, 8-bit (windowed) or 16-bit (raw values)."
                    }
                },
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "contentMediaType": "application/octet-stream",
                        "description": "NumPy .npy (format 1.0) of shape (Height, Width) in the image's dtype, little-endian."
                    }
                }
            }
        }))
        .shared(&[304])
        .error(400, "`image_id` is missing; `z`, `time` or `channel` is not a non-negative integer or is out of range (the message names the valid range); `min`/`max` is not a finite number; `bits` is not 8 or 16; `format` is not png or npy; or `bits=16` was asked of an image wider than 16 bits or of floats.")
        .shared(&[404, 500, 503, 401, 403, 414])
}

/// `GET /statistics`.
pub(crate) fn get_statistics() -> Operation {
    Operation::new("getStatistics", "pixels", "Per-channel statistics")
        .description("Count, mean, standard deviation, extremes, default display window and a 256-bin histogram of each channel over all time points, z slices and pixels. Computed once at upload (no pixels are read here). Each field is an array with one entry per channel, in channel order.")
        .param(shared_param("ImageIdQuery"))
        .param(json!({
            "name": "recompute",
            "in": "query",
            "required": false,
            "schema": {
                "type": "boolean",
                "default": false
            },
            "description": "Recompute the statistics by reading every pixel from the chunked store (a check of the store; the stored record is unchanged). By default the statistics gathered at ingest are returned without reading any pixel."
        }))
        .json::<Statistics>(200, json!({
            "description": "The statistics."
        }))
        .refer(400, "MissingImageId")
        .shared(&[404, 500, 503, 401, 403, 414])
}

/// `POST /analyze`.
pub(crate) fn analyze_image() -> Operation {
    Operation::new("analyzeImage", "analysis", "Principal component analysis over channels")
        .description(r#"Fits a PCA with **pixels as samples and channels as features**: the data matrix is (T·Z·Y·X) × C, every pixel of every time point and z slice being one sample. The result matches scikit-learn's `PCA(n_components=k, svd_solver="full")` fitted on `X = img.transpose(0, 1, 3, 4, 2).reshape(-1, C)` (img in TZCYX order): `explained_variance` uses ddof = 1, and each component's largest-magnitude loading is positive (scikit-learn's sign convention). Scores are `(X − mean) @ components.T` (no whitening).

The scores are always stored as a new float32 image (`scores_image_id`, kind `pca_scores`, channels named PC1…PCk, same T, Z, Y, X as the source) with its own statistics, so they can be viewed and fetched with `/slice` (channel j = component j + 1; `format=npy` for exact values). They are also returned inline in `pca_result` when pixels × components is at most the configured cap (`inline_limit`, default 1,000,000 values; `--inline-scores` / `PENTASCOPE_INLINE_SCORES`); otherwise `pca_result` is null and `pca_result_omitted` says where to fetch them.

Needs an image with at least 2 channels and at least 2 pixels, with no NaN or infinite values. Runs synchronously; large images take as long as two passes over their pixels."#)
        .raw_body(json!({
            "required": true,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/AnalyzeRequest"},
                    "examples": {
                        "two_components": {
                            "summary": "First two principal components",
                            "value": {
                                "image_id": "image_1",
                                "components": 2
                            }
                        }
                    }
                }
            }
        }))
        .json::<PcaResult>(200, json!({
            "description": "The fitted model, the id of the stored scores image and (if small enough) the scores."
        }))
        .error(400, "The body is not JSON (or not sent as `application/json`); `image_id` is missing or not a string; `components` is not a positive integer or exceeds the number of channels; the image has only 1 channel or fewer than 2 pixels; or it contains NaN or infinite values.")
        .shared(&[404, 500, 503])
        .json::<JobAccepted>(202, json!({
            "description": "Accepted as a background job (`\"async\": true`)."
        }))
        .shared(&[401, 403, 414])
}

/// `POST /segment`.
pub(crate) fn segment_image() -> Operation {
    Operation::new("segmentImage", "analysis", "Thresholds, k-means and objects, as scikit-image and scikit-learn")
        .description(r#"Segments one plane (`scope: plane`, the default) or every Z plane at one time and channel (`scope: volume`) of an image.

**Methods.** `otsu`: scikit-image's `threshold_otsu(data)` with its default `nbins=256` (integer data: one bin per integer from min to max; float data: 256 bins over [min, max] with bin centres; the first maximum of the between-class variance), bit for bit, including its float32 arithmetic. `threshold`: the given `threshold`, compared as NumPy compares the array with a Python float (in float32 for float32 data). For both, foreground = `data > threshold`, and **objects** are the connected components of the foreground with scikit-image's default full connectivity (8 neighbours in 2D, 26 in 3D), numbered as `skimage.measure.label` numbers them; each object has `regionprops`' `label`, `area`, `centroid` (z, y, x), `bbox` (half-open: min_z, min_y, min_x, max_z, max_y, max_x) and intensity mean, min and max, in the source image's coordinates (a plane's z is its index in the image). `kmeans`: k-means on the intensities (one feature), solved exactly by dynamic programming on the histogram (integer data) and refined by Lloyd passes over the exact samples (float data); its inertia is never worse than scikit-learn's `KMeans(n_clusters, random_state=42)`; clusters are numbered by increasing centre and every sample is in the cluster of its nearest centre.

**Labels image.** Every run stores a derived image (`labels_image_id`, kind `labels`): uint32 object labels (0 = background) or uint8 cluster numbers, shape TZCYX = (1, 1 or the source's Z, 1, Y, X), with the source's physical sizes; it can be sliced, rendered, downloaded and deleted like any image, belongs to the source's owner, and is deleted with its source.

**Objects inline** up to a cap (`inline_limit`, default 10,000; `--inline-objects` / `PENTASCOPE_INLINE_OBJECTS`); beyond it `objects` is null and `objects_omitted` names the labels image. Labelling holds a few planes and a table of provisional labels (at most `PENTASCOPE_MAX_LABELS`, default 2^24; 413 beyond), never the volume.

`"async": true` runs it as the `heavy_segmentation` job (also a Celery task)."#)
        .raw_body(json!({
            "required": true,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/SegmentRequest"},
                    "examples": {
                        "otsu": {
                            "summary": "Otsu on plane z=0",
                            "value": {
                                "image_id": "image_1",
                                "method": "otsu"
                            }
                        },
                        "kmeans_volume": {
                            "summary": "3 clusters over the Z stack",
                            "value": {
                                "image_id": "image_1",
                                "method": "kmeans",
                                "n_clusters": 3,
                                "scope": "volume"
                            }
                        }
                    }
                }
            }
        }))
        .json::<SegmentResult>(200, json!({
            "description": "The threshold or clusters, the objects and the labels image."
        }))
        .json::<JobAccepted>(202, json!({
            "description": "Accepted as a background job (`\"async\": true`)."
        }))
        .error(400, "The body is not JSON; `image_id` is missing; an unknown key; `method` or `scope` unknown; `z`, `time` or `channel` out of range (the message names the valid range); `threshold` missing for method `threshold`, not a finite number, or given with another method; `n_clusters` outside 2..=256 or given with another method; a constant image (Otsu is undefined) or fewer distinct values than clusters; NaN or infinite samples (Otsu, k-means).")
        .shared(&[401, 403, 404])
        .error(413, "More provisional labels than `PENTASCOPE_MAX_LABELS` (the message names the limit), or integer data spanning more values than Otsu's histogram allows.")
        .shared(&[500, 503, 414])
}

/// `GET /images`.
pub(crate) fn list_images() -> Operation {
    Operation::new("listImages", "images", "Find images: search, filter, sort and page")
        .description("A page of the images the caller may read (another user's private image is never listed or counted). Filters combine with AND. `q` matches words of the name, file name, description, channel names, tags, annotation keys and values and dataset names; each word of `q` (letters and digits; everything else separates words) must begin a word there (word prefixes, case-insensitive). Pages are keyset pages: pass `next_cursor` as `cursor` with the same filters and sort; paging while images are added or deleted never repeats or skips an image that existed throughout.")
        .param(json!({
            "name": "q",
            "in": "query",
            "required": false,
            "description": "Words that must each begin a word of the image's text (at most 1,024 bytes, 32 words).",
            "schema": {
                "type": "string",
                "maxLength": 1024
            }
        }))
        .param(json!({
            "name": "dataset",
            "in": "query",
            "required": false,
            "description": "Only images in this dataset.",
            "schema": {
                "type": "string",
                "pattern": "^dataset_[1-9][0-9]*$"
            }
        }))
        .param(json!({
            "name": "tag",
            "in": "query",
            "required": false,
            "description": "Only images carrying this tag (repeat: all of them).",
            "schema": {
                "type": "array",
                "items": {
                    "type": "string",
                    "maxLength": 4352
                }
            },
            "style": "form",
            "explode": true
        }))
        .param(json!({
            "name": "annotation",
            "in": "query",
            "required": false,
            "description": "`key=value`: only images with this exact annotation (repeat: all of them).",
            "schema": {
                "type": "array",
                "items": {
                    "type": "string",
                    "pattern": "=",
                    "maxLength": 4352
                }
            },
            "style": "form",
            "explode": true
        }))
        .param(json!({
            "name": "owner",
            "in": "query",
            "required": false,
            "description": "Only images owned by this user.",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "dtype",
            "in": "query",
            "required": false,
            "description": "Only images of this sample type.",
            "schema": {
                "$ref": "#/components/schemas/DType"
            }
        }))
        .param(json!({
            "name": "flavour",
            "in": "query",
            "required": false,
            "description": "Only images read from this TIFF flavour (ome, imagej, …).",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "kind",
            "in": "query",
            "required": false,
            "description": "Only uploads or derived images of this kind.",
            "schema": {
                "type": "string",
                "enum": [
                    "upload",
                    "pca_scores",
                    "labels"
                ]
            }
        }))
        .param(json!({
            "name": "created_after",
            "in": "query",
            "required": false,
            "description": "Created after this time (RFC 3339 in UTC, `…Z`, or a date).",
            "schema": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z)?$"
            }
        }))
        .param(json!({
            "name": "created_before",
            "in": "query",
            "required": false,
            "description": "Created before this time (RFC 3339 in UTC, `…Z`, or a date).",
            "schema": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z)?$"
            }
        }))
        .param(json!({
            "name": "sort",
            "in": "query",
            "required": false,
            "description": "Order (default `-created`, newest first).",
            "schema": {
                "type": "string",
                "enum": [
                    "created",
                    "-created",
                    "name",
                    "-name",
                    "size",
                    "-size"
                ],
                "default": "-created"
            }
        }))
        .param(json!({
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Images per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 100
            }
        }))
        .param(cursor())
        .json::<ImageList>(200, json!({
            "description": "A page of images."
        }))
        .error(400, "A parameter or body field is not valid; the message names it and what is valid.")
        .shared(&[401, 403, 500, 503, 414])
}

/// `GET /images/{id}`.
pub(crate) fn get_image() -> Operation {
    Operation::new("getImage", "images", "Describe an image")
        .description("The same document as `GET /metadata?image_id={id}`.")
        .param(image_in_path())
        .json::<Metadata>(
            200,
            json!({
                "description": "The image's metadata."
            }),
        )
        .shared(&[404, 500, 503, 401, 403, 400, 414])
}

/// `DELETE /images/{id}`.
pub(crate) fn delete_image() -> Operation {
    Operation::new("deleteImage", "images", "Delete an image")
        .description("Removes the image's record and its pixels, with the images derived from it (PCA scores). Only the image's owner (with a `write` key) or an admin may delete it; a public image of another user answers 403, an image the caller cannot see 404.")
        .param(image_in_path())
        .json::<DeleteResponse>(200, json!({
            "description": "The image was deleted."
        }))
        .shared(&[404, 500, 503, 401, 403, 400, 414])
}

/// `PATCH /images/{id}`.
pub(crate) fn patch_image() -> Operation {
    Operation::new("patchImage", "images", "Change an image's name, description, tags, annotations, visibility or default look")
        .description(r#"`name`, `description`, `tags` (replaces), `add_tags`, `remove_tags`, `annotations` (replaces; `[[key, value], …]` or `{key: value or [values]}`) change the catalogue entry, within the limits the server sets (tag ≤ 128 characters, ≤ 256 tags, key ≤ 256 characters, value ≤ 4 KiB, ≤ 1,024 annotations by default; no control characters). `{"public": true}` lets every authenticated user read the image and the images derived from it; `false` makes them readable by their owner (and admins) only. `{"rendering": {"channels": [{"color": "FF0000", "window": {"start": 0, "end": 900}, "active": true}, …]}}` (one entry per channel; fields left out keep their defaults) sets the default look used by `/render`, `/thumbnail` and the `omero` metadata of `/zarr/{id}/zarr.json`. Owner (with a `write` key) or admin."#)
        .param(image_in_path())
        .raw_body(json!({
            "required": true,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": false,
                        "minProperties": 1,
                        "properties": {
                            "public": {
                                "type": [
                                    "boolean",
                                    "null"
                                ]
                            },
                            "rendering": {
                                "type": [
                                    "object",
                                    "null"
                                ],
                                "additionalProperties": false,
                                "required": [
                                    "channels"
                                ],
                                "properties": {
                                    "channels": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "additionalProperties": false,
                                            "properties": {
                                                "color": {
                                                    "type": "string",
                                                    "pattern": "^#?[0-9A-Fa-f]{6}$"
                                                },
                                                "window": {
                                                    "type": "object",
                                                    "additionalProperties": false,
                                                    "required": [
                                                        "start",
                                                        "end"
                                                    ],
                                                    "properties": {
                                                        "start": {
                                                            "type": "number"
                                                        },
                                                        "end": {
                                                            "type": "number"
                                                        }
                                                    }
                                                },
                                                "active": {
                                                    "type": "boolean"
                                                }
                                            }
                                        }
                                    }
                                }
                            },
                            "name": {
                                "type": [
                                    "string",
                                    "null"
                                ],
                                "minLength": 1,
                                "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
                            },
                            "description": {
                                "type": [
                                    "string",
                                    "null"
                                ],
                                "pattern": "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
                            },
                            "tags": {
                                "type": [
                                    "array",
                                    "null"
                                ],
                                "items": {
                                    "type": "string",
                                    "minLength": 1,
                                    "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
                                }
                            },
                            "add_tags": {
                                "type": [
                                    "array",
                                    "null"
                                ],
                                "items": {
                                    "type": "string",
                                    "minLength": 1,
                                    "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
                                }
                            },
                            "remove_tags": {
                                "type": [
                                    "array",
                                    "null"
                                ],
                                "items": {
                                    "type": "string",
                                    "minLength": 1,
                                    "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
                                }
                            },
                            "annotations": {
                                "anyOf": [
                                    {
                                        "oneOf": [
                                            {
                                                "$ref": "#/components/schemas/Annotations"
                                            },
                                            {
                                                "type": "object",
                                                "additionalProperties": {
                                                    "oneOf": [
                                                        {
                                                            "type": "string"
                                                        },
                                                        {
                                                            "type": "array",
                                                            "items": {
                                                                "type": "string"
                                                            }
                                                        }
                                                    ]
                                                }
                                            }
                                        ]
                                    },
                                    {
                                        "type": "null"
                                    }
                                ]
                            }
                        }
                    }
                }
            }
        }))
        .json::<Metadata>(200, json!({
            "description": "The image's metadata after the change."
        }))
        .error(400, "The body is not what the route expects; the message says what is.")
        .shared(&[401, 403, 404, 500, 503, 414])
}

/// `GET /health`.
pub(crate) fn get_health() -> Operation {
    Operation::new("getHealth", "service", "Service health")
        .description("Whether the service and its dependencies (metadata database, pixel storage) answer. With access control required, callers without a key get only `status` and `version`.")
        .public()
        .json::<Health>(200, json!({
            "description": "Everything is up (`status` is `ok`)."
        }))
        .json::<Health>(503, json!({
            "description": "The metadata database does not answer (`status` is `degraded`); same body shape."
        }))
        .shared(&[400, 401, 403, 414])
}

/// `GET /metrics`.
pub(crate) fn get_metrics() -> Operation {
    Operation::new("getMetrics", "service", "Prometheus metrics")
        .description("Every metric in Prometheus' text exposition format (docs/operations.md): request durations by method, route template and status (`http_server_request_duration_seconds`), requests in flight, bytes ingested, images by kind, jobs by state and job durations by task and outcome, cache hits and misses, pixel storage durations and errors by backend. Labels never hold an image id or a raw path. Admin keys only (with access control off, anyone on the loopback address).")
        .answer(200, json!({
            "description": "The metrics.",
            "content": {
                "text/plain": {
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .shared(&[401, 403, 503, 400, 414])
}

/// `GET /openapi.json`.
pub(crate) fn get_open_api() -> Operation {
    Operation::new("getOpenApi", "service", "This API description")
        .description("The OpenAPI 3.1 description of this API (this document).")
        .public()
        .answer(
            200,
            json!({
                "description": "The OpenAPI document.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object"
                        }
                    }
                }
            }),
        )
        .shared(&[400, 401, 403, 414])
}

/// `GET /jobs/{id}`.
pub(crate) fn get_job() -> Operation {
    Operation::new(
        "getJob",
        "analysis",
        "A background job's state, progress and outcome",
    )
    .param(json!({
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
            "type": "string"
        },
        "description": "The job_id from a 202 answer."
    }))
    .json::<Job>(
        200,
        json!({
            "description": "The job."
        }),
    )
    .error(404, "No such job.")
    .shared(&[401, 403, 400, 414])
}

/// `GET /images/{id}/download`.
pub(crate) fn download_image() -> Operation {
    Operation::new("downloadImage", "images", "The whole image as one file, streamed")
        .description("The image (uploaded or derived, such as PCA scores) as one file, streamed band by band with bounded server memory whatever its size. `ome-tiff`: an uncompressed OME-TIFF (BigTIFF when over 4 GiB) with the channel names and physical sizes pentascope holds, readable by tifffile and Fiji; uploading it again gives the same pixels and metadata (64-bit integer images cannot be OME-TIFF: 415, use `npy`). `npy`: NumPy's format of the whole array in TZCYX order, little-endian, in the image's own dtype. `Content-Length` is exact.")
        .param(json!({
            "name": "format",
            "in": "query",
            "required": false,
            "schema": {
                "type": "string",
                "enum": [
                    "ome-tiff",
                    "npy"
                ],
                "default": "ome-tiff"
            },
            "description": "The file format."
        }))
        .param(json!({
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
                "$ref": "#/components/schemas/ImageId"
            }
        }))
        .answer(200, json!({
            "description": "The file.",
            "content": {
                "image/tiff": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                },
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                }
            }
        }))
        .error(400, "An unknown format.")
        .shared(&[404, 500, 503])
        .error(415, "OME-TIFF of a 64-bit integer image.")
        .shared(&[401, 403, 414])
}

/// `POST /images/{id}/links`.
pub(crate) fn create_link() -> Operation {
    Operation::new("createLink", "access", "A signed link that reads one image without a key")
        .description("A capability URL prefix for the image's GET routes (`/metadata`, `/slice`, `/statistics`, `/images/{id}`, `/images/{id}/download`) that needs no header, for napari, zarr-python or a browser. HMAC-SHA256 over the image, the scope `read` and the expiry with the server's key (`PENTASCOPE_SECRET_KEY`, or one generated once into the database). Anyone holding the link can read the image until it expires; it opens nothing else. Needs a `write` key and read access to the image.")
        .param(image_in_path())
        .body::<crate::handlers::images::LinkRequest>(json!({
            "required": false,
            "content": {
                "application/json": {}
            }
        }))
        .json::<SignedLink>(200, json!({
            "description": "The link."
        }))
        .error(400, "The body is not what the route expects; the message says what is.")
        .shared(&[401, 403, 404, 500, 503, 414])
}

/// `GET /admin/users`.
pub(crate) fn list_users() -> Operation {
    Operation::new("listUsers", "access", "List users")
        .description("As `pentascope user list`. Admin keys only (with access control off, anyone on the loopback address).")
        .json::<UserList>(200, json!({"description": "Every user."}))
        .shared(&[401, 403, 500, 503, 400, 414])
}

/// `POST /admin/users`.
pub(crate) fn create_user() -> Operation {
    Operation::new("createUser", "access", "Create a user")
        .description("As `pentascope user create NAME [--admin]`. Admin keys only (with access control off, anyone on the loopback address).")
        .body::<crate::handlers::admin::NewUser>(json!({
            "required": true,
            "content": {
                "application/json": {}
            }
        }))
        .json::<UserRecord>(201, json!({
            "description": "The user."
        }))
        .error(400, "The body is not what the route expects; the message says what is.")
        .shared(&[401, 403])
        .error(409, "The name is taken.")
        .shared(&[500, 503, 414])
}

/// `GET /admin/tokens`.
pub(crate) fn list_tokens() -> Operation {
    Operation::new("listTokens", "access", "List API keys")
        .description("As `pentascope token list`; secrets are never shown. Admin keys only (with access control off, anyone on the loopback address).")
        .param(json!({
            "name": "user",
            "in": "query",
            "required": false,
            "description": "Only this user's keys.",
            "schema": {
                "type": "string"
            }
        }))
        .json::<TokenList>(200, json!({"description": "The keys."}))
        .shared(&[401, 403, 500, 503, 400, 414])
}

/// `POST /admin/tokens`.
pub(crate) fn create_token() -> Operation {
    Operation::new("createToken", "access", "Create an API key")
        .description("As `pentascope token create`. The answer holds the key (`ps_<id>_<secret>`, 32 random bytes of secret) this once. Admin keys only (with access control off, anyone on the loopback address).")
        .body::<crate::handlers::admin::NewToken>(json!({
            "required": true,
            "content": {
                "application/json": {}
            }
        }))
        .json::<CreatedToken>(201, json!({
            "description": "The key, shown once."
        }))
        .error(400, "The body is not what the route expects; the message says what is.")
        .shared(&[401, 403, 500, 503, 414])
        .error(404, "No user of that name.")
}

/// `DELETE /admin/tokens/{id}`.
pub(crate) fn revoke_token() -> Operation {
    Operation::new("revokeToken", "access", "Revoke an API key")
        .description("As `pentascope token revoke ID`: the key is refused from the next request on. Admin keys only (with access control off, anyone on the loopback address).")
        .param(json!({
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The key's id.",
            "schema": {
                "type": "integer"
            }
        }))
        .json::<TokenRecord>(200, json!({
            "description": "The revoked key."
        }))
        .shared(&[401, 403, 404, 500, 503, 400, 414])
}

/// `GET /images/{id}/original-metadata`.
pub(crate) fn get_original_metadata() -> Operation {
    Operation::new("getOriginalMetadata", "images", "The metadata text of the image's file, as written")
        .description("The OME-XML, ImageJ description, ScanImage header or other ImageDescription the uploaded file carried, unchanged (bounded by `--max-metadata-bytes`), so that nothing pentascope does not interpret is lost. `X-Metadata-Format` says which: `ome-xml` (served as `application/xml`), `micromanager` (`application/json`: Micro-Manager's `Summary`, `DisplaySettings`, `Comments` and first `ImageMetadata` as tifffile's `micromanager_metadata` names them, plus the `Description` (OME-XML or ImageJ) it also wrote and its `DescriptionFormat`), `imagej`, `scanimage` or `description` (`text/plain`). 404 when the file had none.")
        .param(image_in_path())
        .answer(200, json!({
            "description": "The text.",
            "headers": {
                "X-Metadata-Format": {
                    "schema": {
                        "type": "string",
                        "enum": [
                            "ome-xml",
                            "micromanager",
                            "imagej",
                            "scanimage",
                            "description"
                        ]
                    }
                }
            },
            "content": {
                "application/xml": {
                    "schema": {
                        "type": "string"
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object"
                    }
                },
                "text/plain": {
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .shared(&[401, 403, 404, 500, 503, 400, 414])
}

/// `GET /render`.
pub(crate) fn render() -> Operation {
    Operation::new("render", "images", "A colour composite, projection, region or pyramid tile")
        .description("Renders channels of one plane (or a projection over Z) following OMERO's rendering grammar. Per active channel `v = clamp((x - start) / (end - start), 0, 1)`; the picture is `rgb = clamp(Σ v · colour / 255, 0, 1)` in 8 bits (greyscale mode: the first active channel's `v`). The region is then resampled to the output with a box filter (Pillow's `BOX`: the mean of the input pixels whose centres fall in an output pixel; for tiles, the mean of 2^level × 2^level blocks). Defaults per image (`rendering` in the metadata): every channel, colours from the OME metadata or grey (one channel), green and magenta (two), red, green, blue, cyan, magenta, yellow, grey beyond; windows the channel's 0.1–99.9 percentiles. The image is read band by band: memory follows the output (at most 4096×4096 pixels), not the plane. Answers are cached.")
        .param(json!({
            "name": "image_id",
            "in": "query",
            "required": true,
            "description": "The image id, e.g. `image_1`.",
            "schema": {
                "$ref": "#/components/schemas/ImageId"
            }
        }))
        .param(json!({
            "name": "z",
            "in": "query",
            "required": false,
            "description": "Z plane, 0-based (default 0).",
            "schema": {
                "type": "integer",
                "minimum": 0
            }
        }))
        .param(json!({
            "name": "time",
            "in": "query",
            "required": false,
            "description": "Time point, 0-based (default 0).",
            "schema": {
                "type": "integer",
                "minimum": 0
            }
        }))
        .param(json!({
            "name": "c",
            "in": "query",
            "required": false,
            "description": "Channels: `1|100:5000$FF0000,2|0:4095$00FF00,-3`: 1-based channel, optional `|start:end` window, optional `$RRGGBB` colour, a leading `-` for an inactive channel. Channels not listed are inactive. Default: the image's rendering.",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "m",
            "in": "query",
            "required": false,
            "description": "`c` colour composite (default) or `g` greyscale of the first active channel.",
            "schema": {
                "type": "string",
                "enum": [
                    "c",
                    "g"
                ]
            }
        }))
        .param(json!({
            "name": "p",
            "in": "query",
            "required": false,
            "description": "Projection over Z at `time`: `intmax`, `intmean` or `intsum`, optionally `|zstart:zend` (0-based, inclusive; default every plane), then the same windowing.",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "region",
            "in": "query",
            "required": false,
            "description": "`x,y,w,h` in full-resolution pixels (default the whole plane).",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "size",
            "in": "query",
            "required": false,
            "description": "`W` (keeping the region's aspect) or `W,H`: the output size (default the region's).",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "tile",
            "in": "query",
            "required": false,
            "description": "`level,column,row`: a pyramid tile of 512×512 pixels at `level` (0 is full resolution, each level halves it; the image's `levels` lists them), counted from the top left. Not with `region` or `size`.",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "format",
            "in": "query",
            "required": false,
            "description": "`png` (default), `jpeg`, or `webp` (lossless: the PNG's pixels, usually in fewer bytes).",
            "schema": {
                "type": "string",
                "enum": [
                    "png",
                    "jpeg",
                    "webp"
                ]
            }
        }))
        .param(json!({
            "name": "q",
            "in": "query",
            "required": false,
            "description": "JPEG quality from 0 to 1 (default 0.9).",
            "schema": {
                "type": "number",
                "minimum": 0,
                "maximum": 1
            }
        }))
        .param(shared_param("IfNoneMatch"))
        .answer(200, json!({
            "description": "The picture: RGB (or grey with `m=g`).",
            "content": {
                "image/png": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                },
                "image/jpeg": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                },
                "image/webp": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                }
            },
            "headers": {
                "ETag": {
                    "$ref": "#/components/headers/ETag"
                },
                "Cache-Control": {
                    "$ref": "#/components/headers/CacheControl"
                }
            }
        }))
        .shared(&[304])
        .error(400, "A parameter the grammar refuses; the message quotes the offending token and names the valid range.")
        .shared(&[401, 403, 404, 500, 503, 414])
}

/// `GET /thumbnail`.
pub(crate) fn thumbnail() -> Operation {
    Operation::new("thumbnail", "images", "A thumbnail")
        .description("A PNG whose longer side is `size` pixels: the middle Z plane at the first time point, default rendering (as `/render?z=<middle>&size=W,H`). Cached.")
        .param(json!({
            "name": "image_id",
            "in": "query",
            "required": true,
            "description": "The image id, e.g. `image_1`.",
            "schema": {
                "$ref": "#/components/schemas/ImageId"
            }
        }))
        .param(json!({
            "name": "size",
            "in": "query",
            "required": false,
            "description": "The longer side, 16 to 1024 (default 256).",
            "schema": {
                "type": "integer",
                "minimum": 16,
                "maximum": 1024
            }
        }))
        .param(shared_param("IfNoneMatch"))
        .answer(200, json!({
            "description": "The thumbnail.",
            "content": {
                "image/png": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                }
            },
            "headers": {
                "ETag": {
                    "$ref": "#/components/headers/ETag"
                },
                "Cache-Control": {
                    "$ref": "#/components/headers/CacheControl"
                }
            }
        }))
        .shared(&[304])
        .error(400, "A parameter the grammar refuses; the message quotes the offending token and names the valid range.")
        .shared(&[401, 403, 404, 500, 503, 414])
}

/// `GET /zarr/{id}/{key}`.
pub(crate) fn get_zarr_key() -> Operation {
    Operation::new("getZarrKey", "images", "The image's OME-Zarr group, key by key (also HEAD)")
        .description("Each image as a read-only OME-Zarr (NGFF 0.5, Zarr v3) store, so that zarr-python (`zarr.open_group('http://host/zarr/image_1', mode='r')`), napari (`napari --plugin napari-ome-zarr http://host/zarr/image_1`), ome-zarr-py, vizarr and neuroglancer read it by URL. Stored chunks are sent as stored (blosc LZ4 or zstd, zstd, or uncompressed, as `--compression` chose when the image was stored: each array's `zarr.json` names its codecs), never recompressed; derived images (PCA scores) are served with the pyramid levels and the chunk grid a stored image of their shape and type has (the subchunks of its shards as chunks, uncompressed), each chunk computed on request. `HEAD` answers the size. `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` are answered with 206 and `Content-Range`; a range outside the key, 416 with `Content-Range: bytes */<size>`. Signed links (`/s/<token>/zarr/{id}/…`) open it without a key.")
        .param(shared_param("IfNoneMatch"))
        .param(image_in_path())
        .param(json!({
            "name": "key",
            "in": "path",
            "required": true,
            "description": "A key of the image's Zarr v3 group: `zarr.json` (the group, NGFF 0.5 `ome` attributes), `0/zarr.json` (the array, axes t, c, z, y, x), `0/c/<t>/<c>/<z>/<row>/<column>` (chunks). Slashes are part of the key.",
            "schema": {
                "type": "string"
            }
        }))
        .answer(200, json!({
            "description": "The key's bytes.",
            "headers": {
                "Content-Length": {
                    "schema": {
                        "type": "integer"
                    }
                },
                "Accept-Ranges": {
                    "schema": {
                        "type": "string"
                    }
                },
                "ETag": {
                    "$ref": "#/components/headers/ETag"
                },
                "Cache-Control": {
                    "$ref": "#/components/headers/CacheControl"
                },
                "Last-Modified": {
                    "$ref": "#/components/headers/LastModified"
                }
            },
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object"
                    }
                },
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                }
            }
        }))
        .answer(206, json!({
            "description": "The range asked for.",
            "headers": {
                "Content-Range": {
                    "schema": {
                        "type": "string"
                    }
                },
                "ETag": {
                    "$ref": "#/components/headers/ETag"
                },
                "Cache-Control": {
                    "$ref": "#/components/headers/CacheControl"
                },
                "Last-Modified": {
                    "$ref": "#/components/headers/LastModified"
                }
            },
            "content": {
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary"
                    }
                }
            }
        }))
        .shared(&[304])
        .error(416, "The range lies outside the key.")
        .shared(&[401, 403, 404, 500, 503, 400, 414])
}

/// `GET /`.
pub(crate) fn index_page() -> Operation {
    Operation::new("indexPage", "pages", "The image list and upload page")
        .description("The images the caller may see as thumbnails (`/thumbnail`), each linking to its viewer (`/view/{id}`), and an upload form with a progress bar (`POST /upload`). With access control required, type an API key into the page or open it once as `/?key=<key>`.")
        .public()
        .param(json!({
            "name": "key",
            "in": "query",
            "required": false,
            "description": "An API key for the page's scripts: kept in the tab's `sessionStorage`, sent as `Authorization: Bearer` on every call, and taken off the address at once. Not needed with access control off, nor under a signed link.",
            "schema": {
                "type": "string"
            }
        }))
        .answer(200, json!({
            "description": "The page (HTML; its data comes from `/images` and `/thumbnail`).",
            "content": {
                "text/html": {
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .shared(&[400, 401, 403, 414])
}

/// `GET /view/{id}`.
pub(crate) fn viewer_page() -> Operation {
    Operation::new("viewerPage", "pages", "The image viewer")
        .description("A viewer for one image: T and Z sliders, per-channel on/off, colour and window with the channel's histogram (`/statistics`), Z projections, zoom and pan over `/render` pyramid tiles, a scale bar from the physical pixel size and the metadata (`/images/{id}`). Every change re-requests `/render` with the OMERO `c=` string it shows. The page answers for any id (it holds no data); its calls say whether the image exists. Also served under a signed link, `/s/<token>/view/{id}`.")
        .public()
        .param(json!({
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The image id, e.g. `image_1`.",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "key",
            "in": "query",
            "required": false,
            "description": "An API key for the page's scripts: kept in the tab's `sessionStorage`, sent as `Authorization: Bearer` on every call, and taken off the address at once. Not needed with access control off, nor under a signed link.",
            "schema": {
                "type": "string"
            }
        }))
        .answer(200, json!({
            "description": "The viewer page (HTML).",
            "content": {
                "text/html": {
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .shared(&[400, 401, 403, 414])
}

/// `GET /docs`.
pub(crate) fn docs_page() -> Operation {
    Operation::new("docsPage", "pages", "This API reference as a page")
        .description("Every path, method, parameter and response of `/openapi.json`, rendered in the browser by a small script served from the binary (no network needed).")
        .public()
        .answer(200, json!({
            "description": "The reference page (HTML).",
            "content": {
                "text/html": {
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .shared(&[400, 401, 403, 414])
}

/// `GET /assets/common.js`.
pub(crate) fn asset_common_js() -> Operation {
    asset("assetCommonJs", "Page asset common.js", "Key handling, signed-link prefixes and API calls shared by the pages. Compiled into the binary.", "text/javascript")
}

/// `GET /assets/index.js`.
pub(crate) fn asset_index_js() -> Operation {
    asset(
        "assetIndexJs",
        "Page asset index.js",
        "The script of `/`. Compiled into the binary.",
        "text/javascript",
    )
}

/// `GET /assets/viewer.js`.
pub(crate) fn asset_viewer_js() -> Operation {
    asset(
        "assetViewerJs",
        "Page asset viewer.js",
        "The script of `/view/{id}`. Compiled into the binary.",
        "text/javascript",
    )
}

/// `GET /assets/docs.js`.
pub(crate) fn asset_docs_js() -> Operation {
    asset(
        "assetDocsJs",
        "Page asset docs.js",
        "The script of `/docs`. Compiled into the binary.",
        "text/javascript",
    )
}

/// `GET /assets/tus.min.js`.
pub(crate) fn asset_tus_js() -> Operation {
    asset("assetTusJs", "tus-js-client's browser bundle (vendored)", "tus-js-client 4 (https://github.com/tus/tus-js-client), built by its authors and vendored with `crates/pentascope-server/assets/vendor/update.sh`: the upload form sends files over its threshold to `/uploads` with it.", "text/javascript")
}

/// `GET /assets/style.css`.
pub(crate) fn asset_style_css() -> Operation {
    asset(
        "assetStyleCss",
        "Page asset style.css",
        "The pages' style sheet. Compiled into the binary.",
        "text/css",
    )
}

/// `GET /tags`.
pub(crate) fn list_tags() -> Operation {
    Operation::new("listTags", "catalogue", "Tags with their image counts")
        .description("The tags on images the caller may read, by name, each with how many such images carry it; `prefix` narrows (autocomplete).")
        .param(json!({
            "name": "prefix",
            "in": "query",
            "required": false,
            "description": "Only tags that begin with this.",
            "schema": {
                "type": "string",
                "maxLength": 512
            }
        }))
        .param(json!({
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Tags per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 100
            }
        }))
        .param(cursor())
        .json::<TagList>(200, json!({
            "description": "A page of tags."
        }))
        .error(400, "A parameter or body field is not valid; the message names it and what is valid.")
        .shared(&[401, 403, 500, 503, 414])
}

/// `POST /datasets`.
pub(crate) fn create_dataset() -> Operation {
    Operation::new("createDataset", "catalogue", "Make a dataset")
        .description("A named group of images, owned by the caller (private until made public).")
        .body::<crate::handlers::catalogue::NewDataset>(json!({
            "required": true,
            "content": {
                "application/json": {}
            }
        }))
        .json::<DatasetRecord>(
            201,
            json!({
                "description": "The dataset."
            }),
        )
        .error(
            400,
            "A parameter or body field is not valid; the message names it and what is valid.",
        )
        .shared(&[401, 403, 500, 503, 414])
}

/// `GET /datasets`.
pub(crate) fn list_datasets() -> Operation {
    Operation::new("listDatasets", "catalogue", "Find datasets")
        .description("A page of the datasets the caller may see (own and public), with `image_count` counting only images the caller may read.")
        .param(json!({
            "name": "q",
            "in": "query",
            "required": false,
            "description": "Words that must each begin a word of the name or description.",
            "schema": {
                "type": "string",
                "maxLength": 1024
            }
        }))
        .param(json!({
            "name": "owner",
            "in": "query",
            "required": false,
            "description": "Only datasets of this user.",
            "schema": {
                "type": "string"
            }
        }))
        .param(json!({
            "name": "sort",
            "in": "query",
            "required": false,
            "description": "Order (default `-created`).",
            "schema": {
                "type": "string",
                "enum": [
                    "created",
                    "-created",
                    "name",
                    "-name"
                ],
                "default": "-created"
            }
        }))
        .param(json!({
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Datasets per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 100
            }
        }))
        .param(cursor())
        .json::<DatasetList>(200, json!({
            "description": "A page of datasets."
        }))
        .error(400, "A parameter or body field is not valid; the message names it and what is valid.")
        .shared(&[401, 403, 500, 503, 414])
}

/// `GET /datasets/{id}`.
pub(crate) fn get_dataset() -> Operation {
    Operation::new("getDataset", "catalogue", "A dataset")
        .param(dataset_in_path())
        .json::<DatasetRecord>(
            200,
            json!({
                "description": "The dataset."
            }),
        )
        .shared(&[404, 401, 403, 500, 503, 400, 414])
}

/// `PATCH /datasets/{id}`.
pub(crate) fn patch_dataset() -> Operation {
    Operation::new("patchDataset", "catalogue", "Rename, describe or share a dataset")
        .description("Owner or admin.")
        .param(dataset_in_path())
        .raw_body(json!({
            "required": true,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": false,
                        "minProperties": 1,
                        "properties": {
                            "name": {
                                "type": [
                                    "string",
                                    "null"
                                ],
                                "minLength": 1,
                                "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*$"
                            },
                            "description": {
                                "type": [
                                    "string",
                                    "null"
                                ],
                                "pattern": "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
                            },
                            "public": {
                                "type": [
                                    "boolean",
                                    "null"
                                ]
                            }
                        },
                        "anyOf": [
                            {
                                "required": [
                                    "name"
                                ],
                                "properties": {
                                    "name": {
                                        "type": "string"
                                    }
                                }
                            },
                            {
                                "required": [
                                    "description"
                                ],
                                "properties": {
                                    "description": {
                                        "type": "string"
                                    }
                                }
                            },
                            {
                                "required": [
                                    "public"
                                ],
                                "properties": {
                                    "public": {
                                        "type": "boolean"
                                    }
                                }
                            }
                        ]
                    }
                }
            }
        }))
        .json::<DatasetRecord>(200, json!({
            "description": "The dataset after the change."
        }))
        .error(400, "A parameter or body field is not valid; the message names it and what is valid.")
        .shared(&[404, 401, 403, 500, 503, 414])
}

/// `DELETE /datasets/{id}`.
pub(crate) fn delete_dataset() -> Operation {
    Operation::new(
        "deleteDataset",
        "catalogue",
        "Delete a dataset (its images stay)",
    )
    .description("Owner or admin.")
    .param(dataset_in_path())
    .json::<DatasetDeleted>(
        200,
        json!({
            "description": "Deleted."
        }),
    )
    .shared(&[404, 401, 403, 500, 503, 400, 414])
}

/// `PUT /datasets/{id}/images/{image_id}`.
pub(crate) fn link_image() -> Operation {
    Operation::new("linkImage", "catalogue", "Put an image in a dataset")
        .description("Needs write access to the dataset (owner or admin) and read access to the image. An image may be in several datasets.")
        .param(dataset_in_path())
        .param(json!({
            "name": "image_id",
            "in": "path",
            "required": true,
            "schema": {
                "$ref": "#/components/schemas/ImageId"
            }
        }))
        .json::<DatasetLink>(200, json!({
            "description": "Linked."
        }))
        .shared(&[404, 401, 403, 500, 503, 400, 414])
}

/// `DELETE /datasets/{id}/images/{image_id}`.
pub(crate) fn unlink_image() -> Operation {
    Operation::new("unlinkImage", "catalogue", "Take an image out of a dataset")
        .param(dataset_in_path())
        .param(json!({
            "name": "image_id",
            "in": "path",
            "required": true,
            "schema": {
                "$ref": "#/components/schemas/ImageId"
            }
        }))
        .json::<DatasetLink>(
            200,
            json!({
                "description": "Unlinked."
            }),
        )
        .shared(&[404, 401, 403, 500, 503, 400, 414])
}

/// `GET /images/{id}/objects`.
pub(crate) fn list_objects() -> Operation {
    Operation::new("listObjects", "analysis", "Every object of a labels image, paged (JSON) or streamed (CSV)")
        .description("The objects of a labels image made by a thresholded segmentation, measured again from the labels image and its source (the time, channel and Z planes segmented): every property `POST /segment` gives inline (`skimage.measure.regionprops_table`'s `label`, `area`, `centroid`, `bbox`, `intensity_mean`, `intensity_min`, `intensity_max`, and `area_physical`), in the source image's coordinates, in label order. For results beyond the inline cap (`PENTASCOPE_INLINE_OBJECTS`). `json`: a page of `limit` objects from `offset`, with `next_offset` (null on the last page). `csv`: a header row and one row per object (of `offset`/`limit` if given, else all), streamed; columns `label,area,centroid_z,centroid_y,centroid_x,bbox_min_z,bbox_min_y,bbox_min_x,bbox_max_z,bbox_max_y,bbox_max_x,mean_intensity,min_intensity,max_intensity,area_physical` (empty without physical sizes). Memory: about 200 bytes per object and two planes, within the slice memory budget (413 beyond it).")
        .param(json!({
            "name": "format",
            "in": "query",
            "required": false,
            "schema": {
                "type": "string",
                "enum": [
                    "json",
                    "csv"
                ],
                "default": "json"
            },
            "description": "A JSON page or the CSV table."
        }))
        .param(json!({
            "name": "offset",
            "in": "query",
            "required": false,
            "schema": {
                "type": "integer",
                "minimum": 0,
                "default": 0
            },
            "description": "Objects skipped (the first object, label 1, is at offset 0)."
        }))
        .param(json!({
            "name": "limit",
            "in": "query",
            "required": false,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10000,
                "default": 1000
            },
            "description": "Objects in a JSON page (1 to 10,000); for CSV, rows (default: all)."
        }))
        .param(json!({
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
                "$ref": "#/components/schemas/ImageId"
            },
            "description": "A labels image (`labels_image_id` of `POST /segment` with method `otsu` or `threshold`)."
        }))
        .json::<ObjectPage<'static>>(200, json!({
            "description": "The objects.",
            "content": {
                "application/json": {},
                "text/csv": {
                    "schema": {
                        "type": "string"
                    }
                }
            }
        }))
        .error(400, "An unknown format, a limit out of range, an image that is not a labels image of objects (an uploaded image, PCA scores, k-means clusters).")
        .shared(&[401, 403, 404])
        .error(413, "The object table and two planes exceed the slice memory budget (`PENTASCOPE_SLICE_MEMORY_MIB`).")
        .shared(&[500, 503, 414])
}

/// `GET /admin/audit`.
pub(crate) fn list_audit() -> Operation {
    Operation::new("listAudit", "access", "The audit trail")
        .description("As `pentascope audit`: who did what to which object, when and from which address, newest first. Every upload, deletion, change of an image (catalogue fields, look, visibility), signed link, key created or revoked, user created, dataset change and job submitted is recorded by the use case that did it. Who is a user and the id of their key (never a secret; a signed link by its image and expiry); `address` is the client's (`null`: the command line). Entries older than `--audit-retention` (default 365 days) are swept away. Pages are keyset pages: pass `next_cursor` as `cursor` with the same filters. Admin keys only (with access control off, anyone on the loopback address).")
        .param(json!({
            "name": "user",
            "in": "query",
            "required": false,
            "description": "Only this user's actions.",
            "schema": {
                "type": "string",
                "maxLength": 4352
            }
        }))
        .param(json!({
            "name": "action",
            "in": "query",
            "required": false,
            "description": "Only this action.",
            "schema": {
                "type": "string",
                "enum": [
                    "image.upload",
                    "image.delete",
                    "image.update",
                    "image.rendering",
                    "image.visibility",
                    "link.create",
                    "token.create",
                    "token.revoke",
                    "user.create",
                    "dataset.create",
                    "dataset.update",
                    "dataset.delete",
                    "dataset.link",
                    "dataset.unlink",
                    "job.submit"
                ]
            }
        }))
        .param(json!({
            "name": "kind",
            "in": "query",
            "required": false,
            "description": "Only actions on this kind of object.",
            "schema": {
                "type": "string",
                "enum": [
                    "image",
                    "token",
                    "user",
                    "dataset",
                    "job"
                ]
            }
        }))
        .param(json!({
            "name": "object",
            "in": "query",
            "required": false,
            "description": "Only actions on this object: `image_5`, `dataset_2`, a key's id, a user's name, a job's id.",
            "schema": {
                "type": "string",
                "maxLength": 4352
            }
        }))
        .param(json!({
            "name": "after",
            "in": "query",
            "required": false,
            "description": "Only actions at or after this time.",
            "schema": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z)?$"
            }
        }))
        .param(json!({
            "name": "before",
            "in": "query",
            "required": false,
            "description": "Only actions before this time.",
            "schema": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z)?$"
            }
        }))
        .param(json!({
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Entries per page.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 100
            }
        }))
        .param(cursor())
        .json::<AuditPage>(200, json!({
            "description": "A page of the trail."
        }))
        .error(400, "A parameter is not valid; the message names it and what is valid.")
        .shared(&[401, 403, 500, 503, 414])
}

/// A parameter several routes share.
fn tus_resumable() -> Value {
    json!({
        "name": "Tus-Resumable",
        "in": "header",
        "required": true,
        "description": "The tus version the client speaks: `1.0.0` (412 otherwise).",
        "schema": {
            "const": "1.0.0"
        }
    })
}

/// A parameter several routes share.
fn upload_in_path() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$"
        },
        "description": "The upload's id, from the `Location` of `POST /uploads`."
    })
}

/// A parameter several routes share.
fn cursor() -> Value {
    json!({
        "name": "cursor",
        "in": "query",
        "required": false,
        "description": "The previous page's `next_cursor`.",
        "schema": {
            "type": "string",
            "maxLength": 4352,
            "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"
        }
    })
}

/// A parameter several routes share.
fn image_in_path() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": "The image id, e.g. `image_1`. Ids of any other form are answered with 404.",
        "schema": {
            "$ref": "#/components/schemas/ImageId"
        }
    })
}

/// A parameter several routes share.
fn dataset_in_path() -> Value {
    json!({
        "name": "id",
        "in": "path",
        "required": true,
        "schema": {
            "type": "string"
        },
        "description": "Dataset id, `dataset_<n>`."
    })
}

/// One of the shared parameters of `components/parameters`.
fn shared_param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

/// A static file of the browser pages, compiled into the binary.
fn asset(
    id: &'static str,
    summary: &'static str,
    description: &'static str,
    media: &str,
) -> Operation {
    Operation::new(id, "pages", summary)
        .description(description)
        .public()
        .answer(
            200,
            json!({
                "description": "The file.",
                "content": { media: { "schema": { "type": "string" } } },
            }),
        )
        .shared(&[400, 401, 403, 414])
}
