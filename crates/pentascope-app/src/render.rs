//! Colour rendering of a plane or a projection (`/render`), pyramid tiles
//! and thumbnails: channels windowed, coloured and added
//! ([`pentascope_core::composite`]), a region resampled to the output size,
//! read band by band so that memory follows the output, not the plane.

use std::ops::Range;

use bytes::Bytes;
use pentascope_core::composite::{
    color_hex, default_colors, parse_color, ChannelSpec, Compositor, Layer, Mode, Projection,
    Resample,
};
use pentascope_core::render::{encode_jpeg, encode_png_gray8, encode_png_rgb8, encode_webp};
use pentascope_core::{dispatch_dtype, CoreError, PlaneIndex, Sample, Shape5};
use pentascope_passes::cancel::Cancel;
use pentascope_passes::PassError;
use pentascope_store::pixels::{ArrayLayout, PixelReader};
use pentascope_store::record::{ChannelLook, Window};
use pentascope_store::records::Scope;
use pentascope_store::{ImageRecord, StoreError};
use serde::Serialize;

use crate::access::Caller;
use crate::app::App;
use crate::audit::Action;
use crate::cache::SliceKey;
use crate::error::AppError;
use crate::images::open_pixels;

/// Pixels on a side of a pyramid tile.
pub const TILE_SIZE: u64 = 512;
/// Most output pixels of one rendering (its accumulator holds 12 bytes
/// each).
pub const MAX_OUTPUT_PIXELS: u64 = 4096 * 4096;

/// The output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenderFormat {
    /// PNG (lossless).
    Png,
    /// JPEG at a quality of 1 to 100.
    Jpeg(u8),
    /// Lossless WebP.
    Webp,
}

/// What to render.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderRequest {
    /// Time point.
    pub t: u64,
    /// Z plane (ignored with a projection).
    pub z: u64,
    /// Channels as OMERO's `c` gives them; `None`: the image's defaults.
    pub channels: Option<Vec<ChannelSpec>>,
    /// Colour or grey.
    pub mode: Mode,
    /// A projection over Z and its (inclusive, 0-based) range; `None` for
    /// the range: every plane.
    pub projection: Option<(Projection, Option<(u64, u64)>)>,
    /// `x, y, w, h` in full-resolution pixels.
    pub region: Option<[u64; 4]>,
    /// Output width and, optionally, height (else the region's aspect).
    pub size: Option<(u64, Option<u64>)>,
    /// A pyramid tile: level (0 is full resolution, each halves), column,
    /// row.
    pub tile: Option<(u32, u64, u64)>,
    /// Encoding.
    pub format: RenderFormat,
}

/// A rendered picture.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The encoded bytes.
    pub body: Bytes,
    /// Its media type.
    pub content_type: &'static str,
}

/// One resolution level of an image's pyramid.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Level {
    /// 0 is full resolution.
    pub level: u32,
    /// `[height, width]` at this level.
    pub shape: [u64; 2],
    /// Full-resolution pixels per pixel of this level.
    pub scale: u64,
}

/// The pyramid levels tiles are served at: halving until the plane fits in
/// one tile.
pub fn levels(shape: Shape5) -> Vec<Level> {
    let mut out = Vec::new();
    let mut level = 0u32;
    loop {
        let scale = 1u64 << level;
        let (h, w) = (shape.y.div_ceil(scale), shape.x.div_ceil(scale));
        out.push(Level {
            level,
            shape: [h, w],
            scale,
        });
        if h.max(w) <= TILE_SIZE || level >= 32 {
            return out;
        }
        level += 1;
    }
}

/// The default rendering settings of an image: every channel active, its
/// colour and window as the file saved them (OME `Color`, ImageJ LUTs and
/// `Ranges`), else the default palette and the 0.1–99.9 percentiles
/// gathered at ingest.
pub fn default_channels(record: &ImageRecord) -> Vec<(Layer, bool)> {
    let c = record.shape.c as usize;
    let palette = default_colors(c);
    let from_file = &record.details.acquisition.channels;
    (0..c)
        .map(|i| {
            let file = from_file.get(i).filter(|_| from_file.len() == c);
            let set = record.details.rendering.get(i);
            let color = set
                .and_then(|look| look.color.as_deref())
                .or_else(|| file.and_then(|ch| ch.color.as_deref()))
                .and_then(|hex| parse_color(hex).ok())
                .unwrap_or(palette[i]);
            let saved = set
                .and_then(|look| look.window)
                .map(|w| [w.start, w.end])
                .or_else(|| file.and_then(|ch| ch.display_range));
            let (start, end) = match (saved, record.statistics.get(i)) {
                (Some([low, high]), _) if low < high => (low, high),
                (_, Some(s)) => (s.display_min, s.display_max),
                _ => (0.0, 1.0),
            };
            let active = set.and_then(|look| look.active).unwrap_or(true);
            (Layer { start, end, color }, active)
        })
        .collect()
}

/// The default rendering as NGFF's `omero` metadata, which OME-Zarr
/// viewers (napari, vizarr, OMERO) start from.
pub fn omero_json(record: &ImageRecord) -> serde_json::Value {
    let channels: Vec<serde_json::Value> = default_channels(record)
        .iter()
        .enumerate()
        .map(|(i, (layer, active))| {
            let stats = record.statistics.get(i);
            let label = record
                .details
                .channel_names
                .get(i)
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("Channel {i}"));
            serde_json::json!({
                "label": label,
                "color": color_hex(layer.color).trim_start_matches('#'),
                "active": active,
                "coefficient": 1.0,
                "family": "linear",
                "inverted": false,
                "window": {
                    "start": layer.start,
                    "end": layer.end,
                    "min": stats.map_or(layer.start, |s| s.min.min(layer.start)),
                    "max": stats.map_or(layer.end, |s| s.max.max(layer.end)),
                },
            })
        })
        .collect();
    serde_json::json!({
        "channels": channels,
        "rdefs": {"defaultT": 0, "defaultZ": record.shape.z / 2, "model": "color"},
    })
}

/// An image's default rendering, in the shape of NGFF's `omero` metadata.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DefaultRendering {
    /// One entry per channel.
    pub channels: Vec<ChannelRendering>,
    /// The side of the tiles `/render?tile=` serves.
    pub tile_size: u64,
}

/// How one channel is shown by default.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChannelRendering {
    /// The channel's name from the file; null where it names none.
    pub label: Option<String>,
    /// `RRGGBB`.
    pub color: String,
    /// Whether it is shown.
    pub active: bool,
    /// The window: `start` is shown black, `end` at full colour.
    pub window: Window,
}

/// The default settings in NGFF's `omero` shape, for clients.
pub fn default_rendering(record: &ImageRecord) -> DefaultRendering {
    let channels = default_channels(record)
        .iter()
        .enumerate()
        .map(|(i, (layer, active))| ChannelRendering {
            label: record
                .details
                .channel_names
                .get(i)
                .filter(|n| !n.is_empty())
                .cloned(),
            color: color_hex(layer.color).trim_start_matches('#').to_string(),
            active: *active,
            window: Window {
                start: layer.start,
                end: layer.end,
            },
        })
        .collect();
    DefaultRendering {
        channels,
        tile_size: TILE_SIZE,
    }
}

/// What a request asks for, checked against the plane: a region in
/// full-resolution pixels and the output size, or a pyramid tile.
enum Geometry {
    /// `x, y, w, h` in full-resolution pixels, shown at `out` pixels.
    Region { region: [u64; 4], out: [u64; 2] },
    /// Tile `col, row` of level `level`.
    Tile { level: u32, col: u64, row: u64 },
}

/// Where the output pixels are read: a region of one stored level and how
/// it is resampled to the output.
struct Source {
    level: u32,
    columns: Range<u64>,
    rows: Range<u64>,
    resample_columns: Resample,
    resample_rows: Resample,
}

impl Geometry {
    /// Output `(width, height)`.
    fn output(&self, shape: Shape5) -> (u64, u64) {
        match *self {
            Geometry::Region { out: [w, h], .. } => (w, h),
            Geometry::Tile { level, col, row } => {
                let scale = 1u64 << level;
                let (w, h) = (shape.x.div_ceil(scale), shape.y.div_ceil(scale));
                (
                    (w - col * TILE_SIZE).min(TILE_SIZE),
                    (h - row * TILE_SIZE).min(TILE_SIZE),
                )
            }
        }
    }

    /// The source of the pixels, given the levels `layout` stores: a tile
    /// reads its own level where stored, else the finest stored level
    /// above it box-resampled by the remaining factor; a scaled region
    /// reads the coarsest level with at least one pixel per output pixel.
    fn source(&self, layout: &ArrayLayout) -> Source {
        match *self {
            Geometry::Tile { level, col, row } => {
                let from = level.min(layout.levels);
                let factor = 1u64 << (level - from);
                let [height, width] = layout.level_shape(from);
                let span = TILE_SIZE * factor;
                let (x0, y0) = (col * span, row * span);
                let (x1, y1) = ((x0 + span).min(width), (y0 + span).min(height));
                Source {
                    level: from,
                    resample_columns: Resample::with_scale(
                        (x1 - x0) as usize,
                        (x1 - x0).div_ceil(factor) as usize,
                        factor as f64,
                    ),
                    resample_rows: Resample::with_scale(
                        (y1 - y0) as usize,
                        (y1 - y0).div_ceil(factor) as usize,
                        factor as f64,
                    ),
                    columns: x0..x1,
                    rows: y0..y1,
                }
            }
            Geometry::Region {
                region: [x, y, w, h],
                out: [out_w, out_h],
            } => {
                let pixels_per_output = (w as f64 / out_w as f64).min(h as f64 / out_h as f64);
                let mut from = 0;
                while from < layout.levels && (2u64 << from) as f64 <= pixels_per_output {
                    from += 1;
                }
                let [height, width] = layout.level_shape(from);
                let scale = (1u64 << from) as f64;
                // the region's box in the level's pixels, read from the
                // first pixel it touches to the last
                let axis = |start: u64, len: u64, out: u64, size: u64| {
                    let (b0, b1) = (start as f64 / scale, (start + len) as f64 / scale);
                    let (first, end) = (b0.floor() as u64, (b1.ceil() as u64).min(size));
                    let resample = Resample::with_box(
                        (end - first) as usize,
                        out as usize,
                        b0 - first as f64,
                        (b1 - b0) / out as f64,
                    );
                    (first..end, resample)
                };
                let (columns, resample_columns) = axis(x, w, out_w, width);
                let (rows, resample_rows) = axis(y, h, out_h, height);
                Source {
                    level: from,
                    columns,
                    rows,
                    resample_columns,
                    resample_rows,
                }
            }
        }
    }
}

fn invalid(message: String) -> AppError {
    AppError::InvalidArguments(message)
}

fn geometry(shape: Shape5, request: &RenderRequest) -> Result<Geometry, AppError> {
    let (height, width) = (shape.y, shape.x);
    if let Some((level, col, row)) = request.tile {
        if request.region.is_some() || request.size.is_some() {
            return Err(invalid(
                "tile cannot be combined with region or size".into(),
            ));
        }
        let levels = levels(shape);
        let top = levels.len() - 1;
        let Some(at) = levels.get(level as usize) else {
            return Err(invalid(format!(
                "tile level must be 0 to {top} for this {height}×{width} plane, got {level}"
            )));
        };
        let (tiles_y, tiles_x) = (
            at.shape[0].div_ceil(TILE_SIZE),
            at.shape[1].div_ceil(TILE_SIZE),
        );
        if col >= tiles_x || row >= tiles_y {
            return Err(invalid(format!(
                "level {level} has columns 0 to {} and rows 0 to {} of {TILE_SIZE}-pixel \
                 tiles, got column {col}, row {row}",
                tiles_x - 1,
                tiles_y - 1
            )));
        }
        return Ok(Geometry::Tile { level, col, row });
    }
    let [x, y, w, h] = request.region.unwrap_or([0, 0, width, height]);
    let fits = w >= 1
        && h >= 1
        && x.checked_add(w).is_some_and(|e| e <= width)
        && y.checked_add(h).is_some_and(|e| e <= height);
    if !fits {
        return Err(invalid(format!(
            "region {x},{y},{w},{h} must lie within the {width}×{height} plane \
             (x + w ≤ {width}, y + h ≤ {height}, w and h at least 1)"
        )));
    }
    let (out_w, out_h) = match request.size {
        None => (w, h),
        Some((out_w, Some(out_h))) => (out_w, out_h),
        Some((out_w, None)) => (
            out_w,
            ((out_w as f64 * h as f64 / w as f64).round() as u64).max(1),
        ),
    };
    if out_w == 0 || out_h == 0 || out_w.saturating_mul(out_h) > MAX_OUTPUT_PIXELS {
        return Err(invalid(format!(
            "the output would be {out_w}×{out_h} pixels; it must have 1 to {MAX_OUTPUT_PIXELS} \
             pixels (4096×4096): ask for a smaller size=, a region= or tile="
        )));
    }
    Ok(Geometry::Region {
        region: [x, y, w, h],
        out: [out_w, out_h],
    })
}

/// The active layers and their channels, from the request or the defaults.
fn layers(record: &ImageRecord, request: &RenderRequest) -> Result<Vec<(usize, Layer)>, AppError> {
    let defaults = default_channels(record);
    let chosen: Vec<(usize, Layer)> = match &request.channels {
        None => defaults
            .iter()
            .enumerate()
            .filter(|(_, (_, active))| *active)
            .map(|(i, (layer, _))| (i, *layer))
            .collect(),
        Some(specs) => specs
            .iter()
            .filter(|s| s.active)
            .map(|s| {
                let base = defaults[s.channel].0;
                let (start, end) = s.window.unwrap_or((base.start, base.end));
                (
                    s.channel,
                    Layer {
                        start,
                        end,
                        color: s.color.unwrap_or(base.color),
                    },
                )
            })
            .collect(),
    };
    if chosen.is_empty() {
        return Err(invalid(
            "no channel is active: name at least one without a leading '-' in c".into(),
        ));
    }
    Ok(match request.mode {
        Mode::Color => chosen,
        Mode::Grey => chosen.into_iter().take(1).collect(),
    })
}

impl App {
    /// Sets image `id`'s default look, one entry per channel (owner or
    /// admin); renders cached with the old look are forgotten.
    pub async fn set_rendering(
        &self,
        caller: &Caller,
        id: &str,
        looks: Vec<ChannelLook>,
    ) -> Result<ImageRecord, AppError> {
        caller.require(Scope::Write)?;
        let record = self.image_to_modify(caller, id).await?;
        let c = record.shape.c as usize;
        if looks.len() != c {
            return Err(invalid(format!(
                "rendering.channels needs one entry per channel ({c}), got {}",
                looks.len()
            )));
        }
        for (i, look) in looks.iter().enumerate() {
            if let Some(color) = &look.color {
                parse_color(color).map_err(|e| invalid(format!("channel {i}: {e}")))?;
            }
            if let Some(w) = look.window {
                if !(w.start.is_finite() && w.end.is_finite() && w.start < w.end) {
                    return Err(invalid(format!(
                        "channel {i}: window start {} must be below end {} (finite numbers)",
                        w.start, w.end
                    )));
                }
            }
        }
        let mut details = record.details.clone();
        details.rendering = looks;
        if !self.images.update_details(record.id, &details).await? {
            return Err(StoreError::NotFound(record.id.to_string()).into());
        }
        self.caches.forget(record.id);
        self.audit(caller, Action::ImageRendering, &record.id.to_string(), "")
            .await;
        self.image(caller, id).await
    }

    /// Renders a plane or a projection of image `id` as `request` says.
    /// Rendered pictures are cached; the work stops if the caller leaves.
    pub async fn render(
        &self,
        caller: &Caller,
        id: &str,
        request: &RenderRequest,
    ) -> Result<Rendered, AppError> {
        let record = self.image(caller, id).await?;
        let s = record.shape;
        if request.t >= s.t || request.z >= s.z {
            return Err(CoreError::OutOfRange(format!(
                "time must be 0 to {} and z 0 to {} for {}, got time={} and z={}",
                s.t - 1,
                s.z - 1,
                record.id,
                request.t,
                request.z
            ))
            .into());
        }
        let z_range = match request.projection {
            None => request.z..request.z + 1,
            Some((_, None)) => 0..s.z,
            Some((_, Some((z0, z1)))) => {
                if z0 > z1 || z1 >= s.z {
                    return Err(invalid(format!(
                        "the projection's planes must be zstart:zend with 0 ≤ zstart ≤ zend ≤ {}, \
                         got {z0}:{z1}",
                        s.z - 1
                    )));
                }
                z0..z1 + 1
            }
        };
        let layers = layers(&record, request)?;
        let geometry = geometry(s, request)?;
        let key = SliceKey {
            id: record.id,
            plane: PlaneIndex::new(request.t, request.z, 0),
            rendering: format!("render:{request:?}"),
        };
        if let Some(body) = self.caches.slice(&key) {
            return Ok(Rendered {
                body,
                content_type: content_type(request.format),
            });
        }
        // the output accumulated as f32 RGB, plus a band of each layer
        // (raw, f64 and folded)
        let (out_w, out_h) = geometry.output(s);
        let output = out_w * out_h;
        // a band is a stored chunk's rows (at most 16 MiB of a plane); for
        // images computed on request, count whole planes
        let band_rows = match record.details.chunk_shape[3] {
            0 => s.y,
            rows => rows.min(s.y),
        };
        let band = band_rows * s.x * layers.len() as u64;
        let _memory = self
            .render_share(
                output * 12 + band * (record.dtype.size() as u64 + 16),
                &format!("a {out_w}×{out_h} rendering of {}", record.id),
            )
            .await?;
        let (pixels, caches, id) = (self.pixels.clone(), self.caches.clone(), record.id);
        let (t, mode, projection, format) = (
            request.t,
            request.mode,
            request.projection.map(|(p, _)| p),
            request.format,
        );
        let cancel = Cancel::new();
        let guard = cancel.on_drop();
        let observed = cancel.clone();
        let threads = self.render_spread();
        let rendered = self
            .on_render_thread(move || {
                let reader = caches.reader(id, || open_pixels(&*pixels, &record))?;
                let dtype = reader.layout().dtype;
                let job = Job {
                    t,
                    z_range,
                    projection,
                    layers,
                    mode,
                    source: geometry.source(reader.layout()),
                    cancel: observed,
                };
                let (pixels, (w, h)) = dispatch_dtype!(dtype, T => job.run::<T>(&*reader))?;
                encode(mode, format, w as u32, h as u32, &pixels, threads)
            })
            .await;
        guard.disarm();
        let body = match rendered {
            Ok(body) => self.caches.keep_slice(key, body),
            Err(e) => return Err(self.unless_deleted(id, e).await),
        };
        Ok(Rendered {
            body,
            content_type: content_type(request.format),
        })
    }

    /// A PNG whose longer side is `size`: the middle Z plane at the first
    /// time point, default rendering.
    pub async fn thumbnail(
        &self,
        caller: &Caller,
        id: &str,
        size: u64,
    ) -> Result<Rendered, AppError> {
        if !(16..=1024).contains(&size) {
            return Err(invalid(format!("size must be 16 to 1024, got {size}")));
        }
        let record = self.image(caller, id).await?;
        let s = record.shape;
        let (w, h) = if s.x >= s.y {
            (
                size,
                ((size as f64 * s.y as f64 / s.x as f64).round() as u64).max(1),
            )
        } else {
            (
                ((size as f64 * s.x as f64 / s.y as f64).round() as u64).max(1),
                size,
            )
        };
        let request = RenderRequest {
            t: 0,
            z: s.z / 2,
            channels: None,
            mode: Mode::Color,
            projection: None,
            region: None,
            size: Some((w, Some(h))),
            tile: None,
            format: RenderFormat::Png,
        };
        self.render(caller, id, &request).await
    }
}

fn content_type(format: RenderFormat) -> &'static str {
    match format {
        RenderFormat::Png => "image/png",
        RenderFormat::Jpeg(_) => "image/jpeg",
        RenderFormat::Webp => "image/webp",
    }
}

/// Encodes the rendering, PNG on up to `threads` threads.
fn encode(
    mode: Mode,
    format: RenderFormat,
    width: u32,
    height: u32,
    pixels: &[u8],
    threads: usize,
) -> Result<Vec<u8>, AppError> {
    Ok(match (format, mode) {
        (RenderFormat::Png, Mode::Color) => encode_png_rgb8(width, height, pixels, threads)?,
        (RenderFormat::Png, Mode::Grey) => encode_png_gray8(width, height, pixels, threads)?,
        (RenderFormat::Jpeg(q), Mode::Color) => encode_jpeg(width, height, 3, q, pixels)?,
        (RenderFormat::Jpeg(q), Mode::Grey) => encode_jpeg(width, height, 1, q, pixels)?,
        (RenderFormat::Webp, Mode::Color) => encode_webp(width, height, 3, pixels)?,
        (RenderFormat::Webp, Mode::Grey) => encode_webp(width, height, 1, pixels)?,
    })
}

/// One rendering's work, run on the blocking pool.
struct Job {
    t: u64,
    z_range: Range<u64>,
    projection: Option<Projection>,
    layers: Vec<(usize, Layer)>,
    mode: Mode,
    source: Source,
    cancel: Cancel,
}

impl Job {
    /// Reads the region band by band (each active channel, each plane of
    /// the projection), folds and composites it. Bands are read and folded
    /// on all cores, a few at a time (memory follows the threads, not the
    /// region), and composited in order. A plane, or the maximum over
    /// planes, stays in the sample type; sums and means fold in `f64`.
    fn run<T: Sample>(
        self,
        reader: &dyn PixelReader,
    ) -> Result<(Vec<u8>, (usize, usize)), PassError> {
        match self.projection {
            Some(p) if !p.keeps_type() => {
                self.composite(reader, |band| self.fold_band_sum::<T>(reader, band, p))
            }
            _ => self.composite(reader, |band| self.fold_band_in_type::<T>(reader, band)),
        }
    }

    /// The composite of the region, whose bands `fold` reads and folds into
    /// one plane per active channel.
    fn composite<V: Sample>(
        &self,
        reader: &dyn PixelReader,
        fold: impl Fn(Range<u64>) -> Result<Vec<Vec<V>>, PassError> + Sync,
    ) -> Result<(Vec<u8>, (usize, usize)), PassError> {
        use rayon::prelude::*;
        let g = &self.source;
        let region_rows = (g.rows.end - g.rows.start) as usize;
        let layers: Vec<Layer> = self.layers.iter().map(|(_, l)| *l).collect();
        let mut compositor = Compositor::new(
            layers,
            self.mode,
            g.resample_columns.clone(),
            g.resample_rows.clone(),
            region_rows,
        );
        let columns = (g.columns.end - g.columns.start) as usize;
        // whole subchunk rows: a band that cut one would decode it twice
        let chunk_rows = reader.layout().level_subchunk(g.level)[0].max(1);
        let mut bands = Vec::new();
        let mut band_start = g.rows.start;
        while band_start < g.rows.end {
            let end = ((band_start / chunk_rows + 1) * chunk_rows).min(g.rows.end);
            bands.push(band_start..end);
            band_start = end;
        }
        for batch in bands.chunks(rayon::current_num_threads().max(1)) {
            self.cancel.check()?;
            // one band (a tile) stays on this thread
            let folded = if batch.len() > 1 {
                batch
                    .par_iter()
                    .map(|band| fold(band.clone()))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                batch
                    .iter()
                    .map(|band| fold(band.clone()))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let mut row: Vec<&[V]> = Vec::with_capacity(self.layers.len());
            for (band, folded) in batch.iter().zip(&folded) {
                for r in 0..(band.end - band.start) as usize {
                    row.clear();
                    row.extend(folded.iter().map(|f| &f[r * columns..(r + 1) * columns]));
                    compositor.add_row((band.start - g.rows.start) as usize + r, &row);
                }
            }
        }
        let size = compositor.size();
        Ok((compositor.finish(), size))
    }

    /// Rows `band` of the region, one plane per active channel: the plane
    /// itself, or the maximum over the projection's planes, as samples.
    fn fold_band_in_type<T: Sample>(
        &self,
        reader: &dyn PixelReader,
        band: Range<u64>,
    ) -> Result<Vec<Vec<T>>, PassError> {
        let g = &self.source;
        let n = ((band.end - band.start) * (g.columns.end - g.columns.start)) as usize;
        let mut raw: Vec<T> = Vec::new();
        let mut folded = Vec::with_capacity(self.layers.len());
        for (channel, _) in &self.layers {
            let mut acc = vec![T::default(); n];
            for (i, z) in self.z_range.clone().enumerate() {
                self.cancel.check()?;
                let into = if i == 0 {
                    &mut acc
                } else {
                    raw.resize(n, T::default());
                    &mut raw
                };
                reader.read_region(
                    g.level,
                    PlaneIndex::new(self.t, z, *channel as u64),
                    band.clone(),
                    g.columns.clone(),
                    bytemuck::cast_slice_mut(into),
                )?;
                if i > 0 {
                    Projection::fold_max(&mut acc, &raw);
                }
            }
            folded.push(acc);
        }
        Ok(folded)
    }

    /// Rows `band` of the region, one plane per active channel: the sum
    /// or mean `projection` over its planes.
    fn fold_band_sum<T: Sample>(
        &self,
        reader: &dyn PixelReader,
        band: Range<u64>,
        projection: Projection,
    ) -> Result<Vec<Vec<f64>>, PassError> {
        let g = &self.source;
        let n = ((band.end - band.start) * (g.columns.end - g.columns.start)) as usize;
        let mut raw: Vec<T> = vec![T::default(); n];
        let planes = self.z_range.clone().count();
        let mut folded = Vec::with_capacity(self.layers.len());
        for (channel, _) in &self.layers {
            let mut acc = vec![0f64; n];
            for (i, z) in self.z_range.clone().enumerate() {
                self.cancel.check()?;
                reader.read_region(
                    g.level,
                    PlaneIndex::new(self.t, z, *channel as u64),
                    band.clone(),
                    g.columns.clone(),
                    bytemuck::cast_slice_mut(&mut raw),
                )?;
                Projection::fold_sum(&mut acc, &raw, i == 0);
            }
            projection.finish(&mut acc, planes);
            folded.push(acc);
        }
        Ok(folded)
    }
}
