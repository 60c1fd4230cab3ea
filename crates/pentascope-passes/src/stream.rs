//! Ingest while an upload arrives. TIFF writers (tifffile, ImageJ, most
//! microscopes) put each IFD before its strips, and the first IFD of an
//! ImageJ or tifffile file declares how many pages follow. So the first IFD
//! predicts the series, and each later page whose IFD arrives before its
//! strips is decoded and stored from memory as the strips pass: its bytes
//! reach the disk once, as chunks.
//!
//! Every other byte (header, IFDs, tag values, the strips of pages that
//! cannot be placed yet) is written to a sparse spool file at its offset.
//! When the upload is complete, that file is opened as the TIFF it is, with
//! holes where streamed strips were: its whole chain has the last word. The
//! streamed pages must lie where it says and belong to the planes it says,
//! and the pages not streamed are read from the spool as before. A file
//! whose first IFD declares nothing, or whose IFDs follow their data, is
//! thus simply spooled and read afterwards.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Condvar, Mutex, OnceLock};

use bytes::Bytes;
use pentascope_core::stats::SharedChannelStats;
use pentascope_core::{dispatch_dtype, Axes, CoreError, Limits, Sample};
use pentascope_store::pixels::{ArrayLayout, CompressionSetting, PixelStore, PixelWriter};
use pentascope_store::ImageId;
use pentascope_store::StoreError;

use crate::error::PassError;
use pentascope_tiff::incremental::{IfdStream, StreamedIfd};
use pentascope_tiff::{
    decode_band, Codec, PageGroup, PageLayout, ReadAt, Series, TiffError, TiffFile,
};

use crate::cancel::Cancel;
use crate::ingest::{
    attributes_of, compression_of, copy_groups, ingest_opened, Ingested, PlaneCount, StagedImage,
};

/// The most bytes one page's strips may span to be decoded from memory;
/// larger pages are spooled and read afterwards.
const MAX_PAGE_SPAN: u64 = 32 << 20;
/// Pages held in memory at once, waiting for or in decoding.
const MAX_PAGES_IN_FLIGHT: usize = 4;
/// Pages waiting for their strips at once. Files with all IFDs first list
/// every page before any data: past this many, pages are spooled and read
/// at the end, so that placing each arriving byte stays cheap.
const MAX_PENDING_CAPTURES: usize = 256;

/// An upload's body as it arrives.
pub trait UploadBody: Send {
    /// The next piece of the file, or `None` at its end. An upload that
    /// breaks off is an error.
    fn next_chunk(&mut self) -> Result<Option<Bytes>, PassError>;
    /// The axes override known so far (a form field may follow the file).
    fn axes(&self) -> Option<Axes>;
}

/// An upload streamed into the store.
pub struct StreamIngested {
    /// The image, staged.
    pub ingested: Ingested,
    /// The file's size.
    pub bytes: u64,
    /// Pages decoded as they arrived (the rest were read from the spool).
    pub streamed_pages: u64,
}

/// Where an upload is stored, and what watches it.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The pixel store.
    pub store: &'a dyn PixelStore,
    /// The image's reserved id.
    pub id: ImageId,
    /// The name the image is given.
    pub name: &'a str,
    /// How its pixels are compressed.
    pub compression: CompressionSetting,
    /// What the file may declare.
    pub limits: &'a Limits,
    /// Told `(planes done, planes in all)` as planes are stored.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
    /// Stops the ingest within a band; nothing is left staged.
    pub cancel: &'a Cancel,
}

/// Stores the TIFF arriving as `body` as image `target.id` (staged),
/// decoding the pages it can as they pass and spooling the rest to `spool`
/// (an empty file the caller deletes). `max_len` bounds the file's size
/// (the upload limit). A cancelled or failed ingest leaves nothing staged.
pub fn ingest_stream(
    target: &Target<'_>,
    body: &mut dyn UploadBody,
    spool: &Path,
    max_len: u64,
) -> Result<StreamIngested, PassError> {
    let Target {
        name,
        limits,
        cancel,
        ..
    } = *target;
    let spool_file = File::options().read(true).write(true).open(spool)?;
    let mut router = Router::new(spool_file, max_len, limits, body.axes());
    // until the first IFD is read, the series is not known
    let mut ended = false;
    while !router.decided() && !ended {
        cancel.check()?;
        match body.next_chunk()? {
            Some(chunk) => router.route(&chunk)?,
            None => ended = true,
        }
    }
    let Some(predicted) = router.predicted.clone() else {
        // nothing can be placed before the whole chain is known
        router.ifds.stop();
        while !ended {
            cancel.check()?;
            match body.next_chunk()? {
                Some(chunk) => router.route(&chunk)?,
                None => ended = true,
            }
        }
        if router.pos == 0 {
            return Err(PassError::Core(CoreError::InvalidRequest(format!(
                "the file {name:?} is empty"
            ))));
        }
        let tiff = router.finish(spool, body.axes().as_ref(), limits)?;
        return spooled(target, tiff, router.pos);
    };
    let received = Received {
        router,
        ended,
        initial_axes: body.axes(),
    };
    dispatch_dtype!(predicted.dtype, T => stream_pages::<T>(
        target, body, spool, received, &predicted
    ))
}

/// What has arrived when the series is predicted.
struct Received {
    router: Router,
    /// Whether the upload is already complete.
    ended: bool,
    /// The axes override the prediction used.
    initial_axes: Option<Axes>,
}

/// The pages of the predicted series, decoded as they complete on the
/// rayon pool while this thread goes on receiving.
fn stream_pages<T: Sample>(
    target: &Target<'_>,
    body: &mut dyn UploadBody,
    spool: &Path,
    received: Received,
    predicted: &Series,
) -> Result<StreamIngested, PassError> {
    let Target {
        store,
        id,
        name,
        compression,
        limits,
        progress,
        cancel,
    } = *target;
    let Received {
        mut router,
        ended,
        initial_axes,
    } = received;
    let layout = ArrayLayout::for_image(predicted.shape, predicted.dtype);
    let attributes = attributes_of(predicted, name);
    let channels = SharedChannelStats::<T>::new(predicted.shape.c as usize);
    let planes = PlaneCount::new(predicted.shape.planes(), progress);
    let groups = predicted.page_groups();
    let writer: OnceLock<Box<dyn PixelWriter>> = OnceLock::new();
    let in_flight = InFlight::default();
    let big_endian = router.ifds.big_endian();
    let mut streamed: Vec<(usize, PageLayout)> = Vec::new();
    let received: Result<(), PassError> = rayon::in_place_scope(|scope| {
        let mut on_page = |page: CapturedPage| -> Result<(), PassError> {
            in_flight.check()?;
            if writer.get().is_none() {
                let mut bands: Vec<Vec<T>> = vec![Vec::new(); usize::from(page.layout.samples)];
                let rows = layout.bands().next().expect("an image has rows");
                decode_band(
                    &page,
                    &page.layout,
                    big_endian,
                    rows.start as u32..rows.end as u32,
                    &mut bands,
                )?;
                let created = store.create(
                    id,
                    layout,
                    &attributes,
                    compression_of(compression, &bands[0])?,
                )?;
                let _ = writer.set(created);
            }
            let group = groups
                .iter()
                .find(|g| g.page == Some(page.page))
                .cloned()
                .expect("only pages of the predicted series are captured");
            streamed.push((page.page, page.layout.clone()));
            in_flight.enter();
            let (writer, channels, planes, in_flight) = (&writer, &channels, &planes, &in_flight);
            scope.spawn(move |_| {
                let stored = writer
                    .get()
                    .ok_or_else(|| StoreError::Pixels("no writer".into()).into())
                    .and_then(|w| store_page(&page, &group, big_endian, &**w, channels, cancel));
                if stored.is_ok() {
                    planes.add(group.planes.len() as u64);
                }
                in_flight.leave(stored);
            });
            Ok(())
        };
        let mut ended = ended;
        loop {
            for page in std::mem::take(&mut router.completed) {
                on_page(page)?;
            }
            if ended {
                return Ok(());
            }
            cancel.check()?;
            in_flight.check()?;
            match body.next_chunk()? {
                Some(chunk) => router.route(&chunk)?,
                None => ended = true,
            }
        }
    });
    // a page's own error says more than the stop it caused
    let finished = in_flight
        .result()
        .and(received)
        .and_then(|()| router.finish(spool, body.axes().as_ref(), limits))
        .and_then(|tiff| {
            if streamed.is_empty() {
                return Ok(tiff);
            }
            check_prediction(&tiff, predicted, &streamed).map_err(|what| {
                if body.axes() != initial_axes {
                    return PassError::Core(CoreError::InvalidRequest(format!(
                        "the axes field came after the file, whose pages were stored as they \
                         arrived without it ({what} with the axes): send axes before the file \
                         field, or as ?axes="
                    )));
                }
                PassError::Core(CoreError::Tiff(TiffError::Format(format!(
                    "the file's IFD chain disagrees with what its first IFD declares ({what}); \
                     its pages were stored as the first IFD said while the upload arrived: \
                     import it from a file instead (`pentascope ingest`)"
                ))))
            })?;
            Ok(tiff)
        });
    let writer = writer.into_inner();
    let tiff = match finished {
        Ok(tiff) => tiff,
        Err(e) => {
            if let Some(w) = writer {
                w.abort();
            }
            return Err(e);
        }
    };
    let Some(writer) = writer else {
        // no page could be placed as it arrived
        return spooled(target, tiff, router.pos);
    };
    let rest: Vec<PageGroup> = tiff
        .series()
        .page_groups()
        .into_iter()
        .filter(|g| {
            !g.page
                .is_some_and(|p| streamed.iter().any(|(s, _)| *s == p))
        })
        .collect();
    if let Err(e) = copy_groups::<T>(&tiff, &*writer, &rest, &channels, &planes, cancel) {
        writer.abort();
        return Err(e);
    }
    Ok(StreamIngested {
        ingested: Ingested {
            series: tiff.series().clone(),
            statistics: channels.finish(),
            writer,
            levels_from_file: Vec::new(),
            file: (tiff.all_series().len() > 1).then_some(tiff),
        },
        bytes: router.pos,
        streamed_pages: streamed.len() as u64,
    })
}

/// A file nothing of which could be placed while it arrived: read from the
/// spool as a file on disk is.
fn spooled(target: &Target<'_>, tiff: TiffFile, bytes: u64) -> Result<StreamIngested, PassError> {
    let Target {
        store,
        id,
        name,
        compression,
        progress,
        cancel,
        ..
    } = *target;
    let image = StagedImage {
        id,
        name,
        compression,
    };
    Ok(StreamIngested {
        ingested: ingest_opened(store, &image, tiff, progress, cancel)?,
        bytes,
        streamed_pages: 0,
    })
}

/// Checks that the whole file, now read from the spool, holds the series
/// its first IFD predicted, as far as the streamed pages and the stored
/// array's attributes go: same shape and type, each streamed page where its
/// IFD in the chain says and in the planes the series gives it.
fn check_prediction(
    tiff: &TiffFile,
    predicted: &Series,
    streamed: &[(usize, PageLayout)],
) -> Result<(), String> {
    let series = tiff.series();
    if series.shape != predicted.shape || series.dtype != predicted.dtype {
        return Err(format!(
            "a {:?} {} image, not {:?} {}",
            series.shape.to_array(),
            series.dtype,
            predicted.shape.to_array(),
            predicted.dtype
        ));
    }
    if series.channel_names != predicted.channel_names
        || series.physical_sizes != predicted.physical_sizes
    {
        return Err("other channel names or pixel sizes".into());
    }
    let real = series.page_groups();
    let expected = predicted.page_groups();
    for (page, layout) in streamed {
        let planes_of = |groups: &[PageGroup]| {
            groups
                .iter()
                .find(|g| g.page == Some(*page))
                .map(|g| g.planes.clone())
        };
        if planes_of(&real) != planes_of(&expected) {
            return Err(format!("page {page} belongs to other planes"));
        }
        let real = tiff.layout_of(*page).map_err(|e| e.to_string())?;
        let same_bytes = real.is_final()
            && layout.is_final()
            && real.same_kind(layout)
            && real.planar_separate == layout.planar_separate
            && real.offsets.first() == layout.offsets.first()
            && real.stored_bytes() == layout.stored_bytes();
        if *real != *layout && !same_bytes {
            return Err(format!("page {page} lies elsewhere"));
        }
    }
    Ok(())
}

/// Decodes a captured page band by band into the store and the channel
/// statistics.
fn store_page<T: Sample>(
    page: &CapturedPage,
    group: &PageGroup,
    big_endian: bool,
    writer: &dyn PixelWriter,
    channels: &SharedChannelStats<T>,
    cancel: &Cancel,
) -> Result<(), PassError> {
    let layout = *writer.layout();
    let mut bands: Vec<Vec<T>> = vec![Vec::new(); group.planes.len()];
    let mut partial: Vec<pentascope_core::stats::StatsAccumulator<T>> = group
        .planes
        .iter()
        .map(|_| pentascope_core::stats::StatsAccumulator::new())
        .collect();
    let in_place = as_samples::<T>(page, big_endian);
    for rows in layout.bands() {
        cancel.check()?;
        if let (Some(samples), [plane], [acc]) = (in_place, &group.planes[..], &mut partial[..]) {
            let width = layout.shape.x as usize;
            let band = &samples[rows.start as usize * width..rows.end as usize * width];
            writer.write_band(*plane, rows.start, pentascope_core::dtype::as_bytes(band))?;
            acc.add(band);
            continue;
        }
        decode_band(
            page,
            &page.layout,
            big_endian,
            rows.start as u32..rows.end as u32,
            &mut bands,
        )?;
        for ((plane, band), acc) in group.planes.iter().zip(&bands).zip(&mut partial) {
            writer.write_band(*plane, rows.start, pentascope_core::dtype::as_bytes(band))?;
            acc.add(band);
        }
    }
    for (plane, acc) in group.planes.iter().zip(partial) {
        channels.merge(plane.c as usize, acc);
    }
    Ok(())
}

/// The captured page's samples as they are, where its bytes already are
/// its plane: one sample per pixel, uncompressed, in row order, in this
/// machine's byte order, aligned. Stored from there, without decoding.
fn as_samples<T: Sample>(page: &CapturedPage, big_endian: bool) -> Option<&[T]> {
    let layout = &page.layout;
    let plane = usize::try_from(layout.plane_bytes()?).ok()?;
    let native = big_endian == cfg!(target_endian = "big") || std::mem::size_of::<T>() == 1;
    if !layout.is_final()
        || layout.samples != 1
        || !native
        || layout.offsets.first() != Some(&page.base)
    {
        return None;
    }
    bytemuck::try_cast_slice(page.bytes.get(..plane)?).ok()
}

/// Pages being decoded, at most [`MAX_PAGES_IN_FLIGHT`], and the first
/// error one of them met.
#[derive(Default)]
struct InFlight {
    state: Mutex<(usize, Option<PassError>)>,
    changed: Condvar,
}

impl InFlight {
    /// Waits for room for one more page.
    fn enter(&self) {
        let mut state = self.state.lock().expect("in-flight lock");
        while state.0 >= MAX_PAGES_IN_FLIGHT {
            state = self.changed.wait(state).expect("in-flight lock");
        }
        state.0 += 1;
    }

    fn leave(&self, result: Result<(), PassError>) {
        let mut state = self.state.lock().expect("in-flight lock");
        state.0 -= 1;
        if let Err(e) = result {
            state.1.get_or_insert(e);
        }
        self.changed.notify_all();
    }

    /// Fails with a decoding error met so far, leaving it for [`result`].
    fn check(&self) -> Result<(), PassError> {
        let state = self.state.lock().expect("in-flight lock");
        match &state.1 {
            Some(_) => Err(PassError::Cancelled),
            None => Ok(()),
        }
    }

    /// The first error of any page, once all have finished.
    fn result(&self) -> Result<(), PassError> {
        let mut state = self.state.lock().expect("in-flight lock");
        while state.0 > 0 {
            state = self.changed.wait(state).expect("in-flight lock");
        }
        state.1.take().map_or(Ok(()), Err)
    }
}

/// A page whose strips are gathered from the upload as they pass.
struct CapturedPage {
    /// IFD index.
    page: usize,
    layout: PageLayout,
    /// File offset of `bytes[0]`.
    base: u64,
    /// End of the last strip.
    end: u64,
    /// The strips' byte ranges, sorted and merged: what is not spooled.
    strips: Vec<(u64, u64)>,
    bytes: Vec<u8>,
}

impl ReadAt for CapturedPage {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let from = offset
            .checked_sub(self.base)
            .and_then(|s| usize::try_from(s).ok());
        match from.and_then(|s| self.bytes.get(s..s.checked_add(buf.len())?)) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("bytes at {offset} are outside page {}'s strips", self.page),
            )),
        }
    }
}

/// Sends each arriving byte to a captured page or to the spool, reading
/// IFDs as soon as their bytes are in.
struct Router {
    spool: File,
    /// Bytes received.
    pos: u64,
    /// The file's IFDs, read as they arrive.
    ifds: IfdStream,
    limits: Limits,
    /// The axes the uploader gave, if any.
    axes: Option<Axes>,
    /// The series the first IFD predicts, once read.
    predicted: Option<Series>,
    /// IFD indexes of the predicted series' pages.
    wanted: HashSet<usize>,
    /// Pages being gathered, sorted by `base`, their spans disjoint.
    captures: Vec<CapturedPage>,
    /// Pages whose strips are all in.
    completed: Vec<CapturedPage>,
    /// Pages expected back to back after the first page's strips.
    contiguous: Option<ContiguousPages>,
}

/// The pages of a file that stores its planes uncompressed, back to back
/// after the first page's, with their IFDs after all of them: what tifffile
/// and ImageJ write for uncompressed stacks. Each page is expected where
/// the one before it ends, laid out as the first; the IFDs, read last,
/// must agree.
struct ContiguousPages {
    first: PageLayout,
    /// Bytes of one page.
    span: u64,
    /// The next page to expect, and how many there are.
    next: usize,
    pages: usize,
}

impl Router {
    fn new(spool: File, max_len: u64, limits: &Limits, axes: Option<Axes>) -> Router {
        Router {
            spool,
            pos: 0,
            ifds: IfdStream::new(max_len, limits),
            limits: *limits,
            axes,
            predicted: None,
            wanted: HashSet::new(),
            captures: Vec::new(),
            completed: Vec::new(),
            contiguous: None,
        }
    }

    /// Whether the first IFD has been read, or will not be while streaming.
    fn decided(&self) -> bool {
        self.ifds.decided()
    }

    fn route(&mut self, chunk: &[u8]) -> Result<(), PassError> {
        let mut at = 0usize;
        while at < chunk.len() {
            self.read_ifds()?;
            let p = self.pos;
            // stop where the next IFD can be read, before what follows it,
            // and where the next contiguous page is expected
            let mut n = (chunk.len() - at) as u64;
            if let Some(need) = self.ifds.need().filter(|need| *need > p) {
                n = n.min(need - p);
            }
            if let Some(next) = self.expect_contiguous() {
                n = n.min(next - p);
            }
            if let Some(i) = self.captures.iter().position(|c| c.base <= p && p < c.end) {
                let capture = &mut self.captures[i];
                n = n.min(capture.end - p);
                let piece = &chunk[at..at + n as usize];
                if capture.bytes.is_empty() {
                    // the span is at most MAX_PAGE_SPAN
                    capture
                        .bytes
                        .reserve_exact((capture.end - capture.base) as usize);
                }
                capture.bytes.extend_from_slice(piece);
                // what lies between strips may be metadata: spooled too
                let mut from = p;
                for &(lo, hi) in &capture.strips {
                    if hi <= from || lo >= p + n {
                        continue;
                    }
                    if lo > from {
                        let gap = &piece[(from - p) as usize..(lo - p) as usize];
                        self.spool.write_all_at(gap, from)?;
                    }
                    from = from.max(hi);
                }
                if from < p + n {
                    self.spool
                        .write_all_at(&piece[(from - p) as usize..], from)?;
                }
                if capture.bytes.len() as u64 == capture.end - capture.base {
                    self.completed.push(self.captures.remove(i));
                }
            } else {
                if let Some(next) = self.captures.iter().map(|c| c.base).find(|b| *b > p) {
                    n = n.min(next - p);
                }
                self.spool.write_all_at(&chunk[at..at + n as usize], p)?;
            }
            at += n as usize;
            self.pos += n;
        }
        self.read_ifds()
    }

    /// Reads every IFD whose bytes are in, and captures its page where it
    /// can be decoded as it passes.
    fn read_ifds(&mut self) -> Result<(), PassError> {
        while let Some(need) = self.ifds.need() {
            if need > self.pos {
                return Ok(());
            }
            let Some(StreamedIfd { index, page }) = self.ifds.step(&self.spool)? else {
                continue;
            };
            if index == 0 {
                if let Some(first) = self.ifds.first() {
                    self.predicted = Series::predicted(first, self.axes.as_ref(), &self.limits);
                }
                if let Some(series) = &self.predicted {
                    self.wanted = series.page_groups().iter().filter_map(|g| g.page).collect();
                }
                self.contiguous = page.as_ref().and_then(|first| self.contiguous_pages(first));
            }
            if let Some(layout) = page.filter(|_| self.wanted.contains(&index)) {
                self.capture(index, layout);
            }
        }
        Ok(())
    }

    /// The contiguous pages to expect after `first`, where its strips are
    /// its plane uncompressed and the next IFD lies after all the pages.
    fn contiguous_pages(&self, first: &PageLayout) -> Option<ContiguousPages> {
        let pages = self.wanted.iter().max()? + 1;
        let span = first.stored_bytes();
        if pages < 2 || !first.is_final() || first.plane_bytes() != Some(span) || span == 0 {
            return None;
        }
        let end = span
            .checked_mul(pages as u64)?
            .checked_add(first.offsets[0])?;
        let next_ifd = self.ifds.first()?.next_ifd;
        (end <= self.ifds.max_len() && next_ifd.is_none_or(|ifd| ifd >= end)).then(|| {
            ContiguousPages {
                first: first.clone(),
                span,
                next: 1,
                pages,
            }
        })
    }

    /// Captures the contiguous page expected at the current position, if
    /// one is; gives where the next one is expected.
    fn expect_contiguous(&mut self) -> Option<u64> {
        let pages = self.contiguous.as_mut()?;
        while pages.next < pages.pages {
            // within max_len, checked when predicted
            let shift = pages.next as u64 * pages.span;
            let base = pages.first.offsets[0] + shift;
            if base > self.pos {
                return Some(base);
            }
            let page = pages.next;
            pages.next += 1;
            if base == self.pos && self.wanted.contains(&page) {
                let layout = PageLayout {
                    offsets: pages.first.offsets.iter().map(|o| o + shift).collect(),
                    ..pages.first.clone()
                };
                self.capture(page, layout);
                return self.expect_contiguous();
            }
        }
        None
    }

    /// Gathers page `index` from the upload if all its strips are still to
    /// come, within [`MAX_PAGE_SPAN`] bytes, clear of other captured pages.
    fn capture(&mut self, index: usize, layout: PageLayout) {
        if layout.codec == Codec::Jpeg || layout.offsets.is_empty() {
            // JPEG pages are read whole from the spool: whether they are
            // JFIF is read from their first strip when the chain is
            return;
        }
        // a thumbnail or reduced copy is no plane of the series; the chain,
        // read at the end, says where the planes are
        let first = self.ifds.first().and_then(|c| c.pages.first());
        if layout.reduced || !first.is_some_and(|f| f.as_ref().is_ok_and(|f| f.same_kind(&layout)))
        {
            return;
        }
        let mut strips: Vec<(u64, u64)> = Vec::with_capacity(layout.offsets.len());
        for (o, n) in layout.offsets.iter().zip(&layout.byte_counts) {
            match o.checked_add(*n) {
                Some(end) => strips.push((*o, end)),
                None => return,
            }
        }
        strips.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(strips.len());
        for (lo, hi) in strips {
            match merged.last_mut() {
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        let base = merged[0].0;
        let end = merged.iter().map(|r| r.1).max().unwrap_or(base);
        if base < self.pos
            || end <= base
            || end - base > MAX_PAGE_SPAN
            || self.captures.len() >= MAX_PENDING_CAPTURES
            || self.captures.iter().any(|c| c.base < end && base < c.end)
        {
            return;
        }
        let at = self.captures.partition_point(|c| c.base < base);
        self.captures.insert(
            at,
            CapturedPage {
                page: index,
                layout,
                base,
                end,
                strips: merged,
                bytes: Vec::new(),
            },
        );
    }

    /// The whole file, from the spool, once the upload is complete.
    fn finish(
        &self,
        spool: &Path,
        axes: Option<&Axes>,
        limits: &Limits,
    ) -> Result<TiffFile, PassError> {
        self.spool.set_len(self.pos)?;
        // opened alone in a folder of its own: the spool is no dataset's
        // folder, and the other uploads' files in it are no files of this
        // one's (a multi-file OME-XML could name them)
        let folder = tempfile::Builder::new()
            .prefix("alone-")
            .tempdir_in(spool.parent().unwrap_or(Path::new(".")))?;
        let alone = folder.path().join("upload.tif");
        std::os::unix::fs::symlink(std::fs::canonicalize(spool)?, &alone)?;
        Ok(TiffFile::open(&alone, limits, axes)?)
    }
}
