//! One plane of an image as an 8-bit windowed PNG, a 16-bit raw PNG or the
//! exact samples as `.npy`, through the bounded caches.

use bytes::Bytes;
use pentascope_core::render::{encode_npy, encode_png_gray16, encode_png_windowed, Window};
use pentascope_core::stats::accumulate_par;
use pentascope_core::{dispatch_dtype, PlaneIndex, Sample};
use pentascope_core::{CoreError, Limit};
use pentascope_store::pixels::PixelReader;
use pentascope_store::{ImageId, ImageRecord};

use crate::app::App;
use crate::cache::SliceKey;
use crate::error::AppError;
use crate::images::open_pixels;

/// What a plane becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SliceFormat {
    /// 8-bit PNG windowed to `[low, high]`; each bound defaults to the
    /// 0.1–99.9 percentiles of the channel over the whole stack, or of this
    /// plane alone with `per_plane` (a dim plane of a bright stack).
    Png8 {
        /// Value shown black.
        low: Option<f64>,
        /// Value shown white.
        high: Option<f64>,
        /// Whether the default window comes from this plane alone.
        per_plane: bool,
    },
    /// 16-bit PNG of the raw values (integer images up to 16 bits).
    Png16,
    /// The exact samples as NumPy `.npy`.
    Npy,
}

/// A rendered plane.
#[derive(Debug, Clone)]
pub struct Slice {
    /// The encoded plane.
    pub body: Bytes,
    /// Its media type.
    pub content_type: &'static str,
    /// A file name for it.
    pub filename: String,
}

impl App {
    /// Plane `plane` of `record` (as [`App::image`] gave it to its caller,
    /// who has it already for its validators) rendered as `format`.
    pub async fn slice(
        &self,
        record: ImageRecord,
        plane: PlaneIndex,
        format: SliceFormat,
    ) -> Result<Slice, AppError> {
        record.shape.check_plane(plane)?;
        let rendering = match format {
            SliceFormat::Png8 {
                low,
                high,
                per_plane: true,
            } => Rendering::Png8PerPlane { low, high },
            SliceFormat::Png8 { low, high, .. } => {
                let stats = &record.statistics[plane.c as usize];
                Rendering::Png8(Window {
                    low: low.unwrap_or(stats.display_min),
                    high: high.unwrap_or(stats.display_max),
                })
            }
            SliceFormat::Png16 => Rendering::Png16,
            SliceFormat::Npy => Rendering::Npy,
        };
        let id = record.id;
        let key = SliceKey {
            id,
            plane,
            rendering: rendering.key(),
        };
        let body = match self.caches.slice(&key) {
            Some(body) => body,
            None => {
                let _share = self.slice_share_for(&record).await?;
                let (pixels, caches) = (self.pixels.clone(), self.caches.clone());
                let threads = self.render_spread();
                let rendered = self
                    .on_render_thread(move || {
                        let reader = caches.reader(id, || open_pixels(&*pixels, &record))?;
                        let dtype = reader.layout().dtype;
                        dispatch_dtype!(dtype, T => render::<T>(&*reader, plane, rendering, threads))
                    })
                    .await;
                let body = match rendered {
                    Ok(body) => body,
                    Err(e) => return Err(self.unless_deleted(id, e).await),
                };
                self.caches.keep_slice(key, body)
            }
        };
        Ok(Slice {
            body,
            content_type: rendering.content_type(),
            filename: rendering.filename(id, plane),
        })
    }
}

/// Bytes a slice request holds per byte of its plane: the samples and the
/// encoder's output (rows are rendered as they are encoded).
const SLICE_COPIES: u64 = 2;

impl App {
    /// Waits for a rendering slot and a share of the memory budget large
    /// enough for one plane of `record`; a plane that can never fit is
    /// refused.
    async fn slice_share_for(&self, record: &ImageRecord) -> Result<RenderShare<'_>, AppError> {
        let s = record.shape;
        let plane_bytes =
            s.y.checked_mul(s.x)
                .and_then(|p| p.checked_mul(record.dtype.size() as u64))
                .unwrap_or(u64::MAX);
        self.render_share(
            plane_bytes.saturating_mul(SLICE_COPIES),
            &format!("a {}×{} plane of {}", s.y, s.x, record.id),
        )
        .await
    }

    /// Waits for a rendering slot and then for `bytes` of the memory budget
    /// that renderings share (slices, composites, computed Zarr chunks);
    /// more than the whole budget is refused with a message naming `what`.
    pub(crate) async fn render_share(
        &self,
        bytes: u64,
        what: &str,
    ) -> Result<RenderShare<'_>, AppError> {
        let need_mib = bytes.div_ceil(1 << 20).max(1);
        let budget_mib = self.config.slice_memory_bytes >> 20;
        if need_mib > budget_mib {
            return Err(CoreError::too_large(
                Limit::SliceMemory,
                format!(
                    "{what} needs about {need_mib} MiB to render, more than the slice memory \
                     budget of {budget_mib} MiB"
                ),
            )
            .into());
        }
        // the slot first, everywhere: a rendering never holds memory while
        // it waits for a slot
        let closed = |e: tokio::sync::AcquireError| AppError::Internal(e.to_string());
        let slot = self.render_slots.acquire().await.map_err(closed)?;
        let memory = self
            .slice_memory
            .acquire_many(u32::try_from(need_mib).unwrap_or(u32::MAX))
            .await
            .map_err(closed)?;
        Ok(RenderShare {
            _slot: slot,
            _memory: memory,
        })
    }
}

/// A rendering's slot and its share of the memory budget, given back when
/// it is dropped.
pub(crate) struct RenderShare<'a> {
    _slot: tokio::sync::SemaphorePermit<'a>,
    _memory: tokio::sync::SemaphorePermit<'a>,
}

/// A format with its window resolved.
#[derive(Debug, Clone, Copy)]
enum Rendering {
    Png8(Window),
    /// 8 bits, the unset bounds from this plane's own percentiles.
    Png8PerPlane {
        low: Option<f64>,
        high: Option<f64>,
    },
    Png16,
    Npy,
}

impl Rendering {
    /// Everything besides the pixels that the bytes depend on.
    fn key(self) -> String {
        match self {
            Rendering::Npy => "npy".into(),
            Rendering::Png16 => "png16".into(),
            Rendering::Png8(w) => format!("png8:{:x}:{:x}", w.low.to_bits(), w.high.to_bits()),
            Rendering::Png8PerPlane { low, high } => format!(
                "png8plane:{:?}:{:?}",
                low.map(f64::to_bits),
                high.map(f64::to_bits)
            ),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Rendering::Npy => "application/octet-stream",
            _ => "image/png",
        }
    }

    fn filename(self, id: ImageId, plane: PlaneIndex) -> String {
        let extension = match self {
            Rendering::Npy => "npy",
            _ => "png",
        };
        format!("{id}_t{}_z{}_c{}.{extension}", plane.t, plane.z, plane.c)
    }
}

/// Planes up to this size are read into a buffer their thread keeps for
/// the next one: zeroing and faulting in a fresh plane was a twentieth of
/// a slice request, and its pages were what the allocator held on to under
/// load. Larger planes get a buffer of their own.
const KEPT_PLANE_BYTES: usize = 8 << 20;

thread_local! {
    /// This thread's plane buffer (8-byte words: aligned for every type).
    static PLANE: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads `plane` and encodes it as `rendering` on up to `threads` threads.
fn render<T: Sample>(
    reader: &dyn PixelReader,
    plane: PlaneIndex,
    rendering: Rendering,
    threads: usize,
) -> Result<Vec<u8>, AppError> {
    let shape = reader.layout().shape;
    // no overflow: `slice_share_for` refused planes over the memory budget
    let samples = (shape.y * shape.x) as usize;
    let bytes = samples * std::mem::size_of::<T>();
    let (w, h) = (shape.x as u32, shape.y as u32);
    if bytes <= KEPT_PLANE_BYTES {
        let rendered = PLANE.with(|kept| {
            // None when this thread is rendering a plane already (a pool
            // thread that took up a second job while it waited)
            let mut kept = kept.try_borrow_mut().ok()?;
            if kept.len() * 8 < bytes {
                kept.resize(bytes.div_ceil(8), 0);
            }
            let samples: &mut [T] = &mut bytemuck::cast_slice_mut(kept.as_mut_slice())[..samples];
            Some(
                reader
                    .read_rows(plane, 0..shape.y, bytemuck::cast_slice_mut(samples))
                    .map_err(AppError::from)
                    .and_then(|()| encode(samples, w, h, rendering, threads)),
            )
        });
        if let Some(rendered) = rendered {
            return rendered;
        }
    }
    encode(&reader.read_plane::<T>(plane)?, w, h, rendering, threads)
}

/// Encodes the `w × h` plane `samples` as `rendering` asks, on up to
/// `threads` threads.
fn encode<T: Sample>(
    samples: &[T],
    w: u32,
    h: u32,
    rendering: Rendering,
    threads: usize,
) -> Result<Vec<u8>, AppError> {
    Ok(match rendering {
        Rendering::Npy => encode_npy(&[u64::from(h), u64::from(w)], samples),
        Rendering::Png16 => encode_png_gray16(w, h, samples)?,
        Rendering::Png8(window) => encode_png_windowed(w, h, samples, window, threads)?,
        Rendering::Png8PerPlane { low, high } => {
            // the same percentiles ingest computes for the stack, of this plane
            let plane_stats = accumulate_par(samples).finish();
            let window = Window {
                low: low.unwrap_or(plane_stats.display_min),
                high: high.unwrap_or(plane_stats.display_max),
            };
            encode_png_windowed(w, h, samples, window, threads)?
        }
    })
}
