//! Resumable uploads (the state behind tus 1.0, without HTTP): an upload is
//! created with its length and what describes its image, receives its bytes
//! in any number of appends at its current offset, and is ingested exactly
//! as `POST /upload` ingests ([`App::ingest_stream`]) when its last byte
//! arrives.
//!
//! Bytes are staged in `<data dir>/uploads/<id>.bin`; the offset and the
//! upload's description are kept beside them in `<id>.json`, written only
//! after the bytes it counts are flushed to disk. Bytes and offset live and
//! die together in one directory (a database row could outlive its file or
//! disagree with it after a crash), and a restart on the same data
//! directory finds both: a staged tail that the offset does not count is cut
//! off when the upload is next opened.
//!
//! While bytes arrive, a live ingest reads the staged file as it grows, so
//! pages are stored as they pass ([`pentascope_passes::stream`]) across the
//! client's interruptions. After a restart, or when a live ingest was
//! stopped (idle, too old, too many at once), the next append starts one
//! again from the staged file's first byte.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use pentascope_core::{Axes, Limit};
use pentascope_passes::stream::UploadBody;
use pentascope_passes::PassError;
use pentascope_store::records::Scope;
use pentascope_store::{ImageRecord, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::{Caller, Who};
use crate::app::{blocking, lock, App};
use crate::catalogue::NewEntry;
use crate::error::AppError;
use crate::ingest::UploadStream;

/// Bytes gathered from a request before they are written.
const WRITE_BYTES: usize = 4 << 20;
/// Bytes written between two flushes that make them count in the offset.
const PERSIST_BYTES: u64 = 32 << 20;
/// Bytes the live ingest reads from the staged file at a time.
const READ_BYTES: u64 = 1 << 20;
/// Time an append waits for its client's next bytes before it ends,
/// keeping what arrived (a connection that died without closing).
const BODY_IDLE: Duration = Duration::from_secs(60);
/// Live ingests at once; each holds a thread while it waits for bytes.
/// Other uploads are staged and ingested from the staged file at the end.
const MAX_LIVE_INGESTS: usize = 16;
/// Time a live ingest may wait without an append before it is stopped
/// (started again by the next append).
const LIVE_IDLE: Duration = Duration::from_secs(300);
/// Age past which a live ingest between appends is started again: its
/// reserved image id must stay younger than the sweep of abandoned
/// ingests (`STALE_UPLOAD_HOURS`).
const LIVE_MAX_AGE: Duration =
    Duration::from_secs(crate::config::defaults::STALE_UPLOAD_HOURS * 3600 / 2);
/// Unfinished resumable uploads one user may have at once.
pub const MAX_OPEN_UPLOADS: usize = 256;

/// What a resumable upload is, as kept beside its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadState {
    /// Its id (32 hexadecimal digits).
    pub id: String,
    /// The user whose key created it (`None` with access control off).
    pub owner: Option<String>,
    /// The file's size in bytes.
    pub length: u64,
    /// Bytes received and flushed to disk.
    pub offset: u64,
    /// The client's `Upload-Metadata`, as sent.
    pub metadata: String,
    /// The file's name (`original_filename`).
    pub file_name: String,
    /// The axes override, as sent.
    pub axes: Option<String>,
    /// What the image is called and filed under.
    pub entry: NewEntry,
    /// When it is removed, in seconds since the epoch.
    pub expires_at: u64,
    /// The image, once published.
    pub image_id: Option<String>,
}

/// A resumable upload to create.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The file's size in bytes.
    pub length: u64,
    /// The client's `Upload-Metadata`, as sent.
    pub metadata: String,
    /// The file's name.
    pub file_name: String,
    /// The axes override.
    pub axes: Option<String>,
    /// Its name, description, tags, annotations and datasets.
    pub entry: NewEntry,
}

/// An append's outcome.
#[derive(Debug)]
pub struct Appended {
    /// The upload after it.
    pub state: UploadState,
    /// The image, when this append brought the last byte (or the upload
    /// was complete already).
    pub image: Option<ImageRecord>,
}

/// Where a resumable upload stands, for `GET /uploads/{id}`.
#[derive(Debug)]
pub struct UploadProgress {
    /// The upload.
    pub state: UploadState,
    /// The image, once published.
    pub image: Option<ImageRecord>,
}

/// The resumable uploads this process has opened.
#[derive(Default)]
pub(crate) struct Uploads {
    open: Mutex<HashMap<String, Arc<Live>>>,
}

/// One upload while this process knows it.
struct Live {
    /// The persisted state (what `HEAD` answers).
    state: Mutex<Persisted>,
    /// Held by the append writing.
    writer: tokio::sync::Mutex<()>,
    /// Bumped by each append: the one writing stops and lets it in (its
    /// client may have gone without the connection closing).
    takeover: tokio::sync::watch::Sender<u64>,
    /// The live ingest, if one runs.
    ingest: Mutex<Option<Running>>,
    /// Why the ingest refused the file, until someone is told.
    failure: Mutex<Option<AppError>>,
    /// Told when the ingest publishes the image or fails.
    settled: tokio::sync::Notify,
}

struct Persisted {
    upload: UploadState,
    /// Terminated, expired or refused: nothing is written for it any more.
    gone: bool,
}

/// A live ingest.
struct Running {
    feed: Arc<Feed>,
    started: Instant,
}

/// How far the staged file may be read, shared by the appends and the live
/// ingest reading it.
struct Feed {
    state: Mutex<FeedState>,
    grown: Condvar,
}

struct FeedState {
    readable: u64,
    /// The ingest is to stop.
    closed: bool,
    last_fed: Instant,
}

impl Feed {
    fn new(readable: u64) -> Feed {
        Feed {
            state: Mutex::new(FeedState {
                readable,
                closed: false,
                last_fed: Instant::now(),
            }),
            grown: Condvar::new(),
        }
    }

    fn advance(&self, readable: u64) {
        let mut state = lock(&self.state);
        state.readable = state.readable.max(readable);
        state.last_fed = Instant::now();
        self.grown.notify_all();
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.grown.notify_all();
    }

    fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    fn idle_for(&self) -> Duration {
        lock(&self.state).last_fed.elapsed()
    }
}

/// The staged file as the live ingest reads it: up to what the appends
/// have written, waiting for more.
struct StagedBody {
    file: File,
    read: u64,
    length: u64,
    feed: Arc<Feed>,
    axes: Option<Axes>,
}

impl UploadBody for StagedBody {
    fn next_chunk(&mut self) -> Result<Option<Bytes>, PassError> {
        if self.read >= self.length {
            return Ok(None);
        }
        let readable = {
            let mut state = lock(&self.feed.state);
            while state.readable <= self.read && !state.closed {
                state = self
                    .feed
                    .grown
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if state.closed {
                return Err(PassError::Cancelled);
            }
            state.readable
        };
        let n = (readable - self.read).min(READ_BYTES);
        let mut buf = vec![0u8; n as usize];
        self.file.read_exact_at(&mut buf, self.read)?;
        self.read += n;
        Ok(Some(Bytes::from(buf)))
    }

    fn axes(&self) -> Option<Axes> {
        self.axes.clone()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!(
        "no upload {id:?}: it was never created, has expired or been terminated, or belongs \
         to another user"
    ))
}

/// Whether `id` can name an upload (and a file in its directory).
fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn io_error(what: &str, e: std::io::Error) -> AppError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        StoreError::Io(e).into()
    } else {
        AppError::Internal(format!("{what}: {e}"))
    }
}

/// Paths of an upload's staged bytes and state.
struct Paths {
    bytes: PathBuf,
    state: PathBuf,
}

impl Paths {
    fn of(dir: &Path, id: &str) -> Paths {
        Paths {
            bytes: dir.join(format!("{id}.bin")),
            state: dir.join(format!("{id}.json")),
        }
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.bytes);
        let _ = std::fs::remove_file(&self.state);
    }
}

/// Writes `state` beside its bytes: to a new file, flushed, then renamed
/// over the old one, so that a crash leaves one or the other.
fn save(dir: &Path, state: &UploadState) -> Result<(), AppError> {
    let paths = Paths::of(dir, &state.id);
    let text = serde_json::to_vec(state).map_err(|e| AppError::Internal(e.to_string()))?;
    let temporary = dir.join(format!("{}.json.new", state.id));
    let write = || -> std::io::Result<()> {
        let file = File::create(&temporary)?;
        file.write_all_at(&text, 0)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &paths.state)
    };
    write().map_err(|e| io_error("cannot save the upload's state", e))
}

impl Live {
    fn new(upload: UploadState) -> Live {
        Live {
            state: Mutex::new(Persisted {
                upload,
                gone: false,
            }),
            writer: tokio::sync::Mutex::new(()),
            takeover: tokio::sync::watch::Sender::new(0),
            ingest: Mutex::new(None),
            failure: Mutex::new(None),
            settled: tokio::sync::Notify::new(),
        }
    }

    fn snapshot(&self) -> UploadState {
        lock(&self.state).upload.clone()
    }

    fn is_gone(&self) -> bool {
        lock(&self.state).gone
    }

    /// Saves the upload as `change` leaves it, unless it is gone.
    fn update(&self, dir: &Path, change: impl FnOnce(&mut UploadState)) -> Result<(), AppError> {
        let mut persisted = lock(&self.state);
        if persisted.gone {
            return Ok(());
        }
        let mut upload = persisted.upload.clone();
        change(&mut upload);
        save(dir, &upload)?;
        persisted.upload = upload;
        Ok(())
    }

    /// Marks the upload gone and removes its files; stops its live ingest.
    fn remove(&self, dir: &Path) {
        let mut persisted = lock(&self.state);
        persisted.gone = true;
        Paths::of(dir, &persisted.upload.id).remove();
        drop(persisted);
        self.stop_ingest();
        self.settled.notify_waiters();
    }

    fn stop_ingest(&self) {
        if let Some(running) = lock(&self.ingest).take() {
            running.feed.close();
        }
    }

    /// Lets the bytes up to `readable` be read by the live ingest.
    fn feed(&self, readable: u64) {
        if let Some(running) = &*lock(&self.ingest) {
            running.feed.advance(readable);
        }
    }
}

impl App {
    fn uploads_dir(&self) -> PathBuf {
        self.config.resumable_dir()
    }

    fn expiry_from_now(&self) -> u64 {
        unix_now().saturating_add(self.config.upload_expiry.as_secs())
    }

    /// Creates a resumable upload owned by `caller`. Everything the ingest
    /// would refuse before reading a byte (its size, its axes, its
    /// catalogue fields and datasets) is refused now.
    pub async fn create_upload(
        self: &Arc<Self>,
        caller: &Caller,
        new: NewUpload,
    ) -> Result<UploadState, AppError> {
        caller.require(Scope::Write)?;
        if new.length == 0 {
            return Err(AppError::InvalidArguments(format!(
                "the file {:?} is empty (Upload-Length: 0)",
                new.file_name
            )));
        }
        if new.length > self.config.max_upload_bytes {
            return Err(AppError::TooLarge {
                limit: Limit::MaxUploadBytes,
                message: format!(
                    "the upload ({} bytes) is larger than the configured maximum of {} bytes",
                    new.length, self.config.max_upload_bytes
                ),
            });
        }
        if let Some(axes) = new.axes.as_deref().filter(|a| !a.trim().is_empty()) {
            Axes::parse(axes)?;
        }
        self.check_entry(caller, new.entry.clone()).await?;
        let dir = self.uploads_dir();
        let owner = caller.owner().map(str::to_string);
        let counted = (dir.clone(), owner.clone());
        let open = blocking(move || Ok(open_uploads_of(&counted.0, counted.1.as_deref()))).await?;
        if open >= MAX_OPEN_UPLOADS {
            return Err(AppError::Conflict(format!(
                "you have {open} unfinished uploads, the most one user may have \
                 ({MAX_OPEN_UPLOADS}): finish them, terminate them (DELETE /uploads/{{id}}) \
                 or let them expire ({} s after their last byte)",
                self.config.upload_expiry.as_secs()
            )));
        }
        let upload = UploadState {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner,
            length: new.length,
            offset: 0,
            metadata: new.metadata,
            file_name: new.file_name,
            axes: new.axes,
            entry: new.entry,
            expires_at: self.expiry_from_now(),
            image_id: None,
        };
        let created = upload.clone();
        blocking(move || {
            std::fs::create_dir_all(&dir)
                .map_err(|e| io_error("cannot create the uploads directory", e))?;
            let paths = Paths::of(&dir, &created.id);
            File::create(&paths.bytes)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error("cannot create the upload's file", e))?;
            save(&dir, &created)?;
            // the new names survive a crash
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error("cannot flush the uploads directory", e))
        })
        .await?;
        lock(&self.uploads.open).insert(upload.id.clone(), Arc::new(Live::new(upload.clone())));
        tracing::info!(id = %upload.id, length = upload.length, file = %upload.file_name, "resumable upload created");
        Ok(upload)
    }

    /// The upload `id` of `caller`, opened from its files after a restart.
    /// An upload whose file was refused answers why, once.
    async fn open_upload(&self, caller: &Caller, id: &str) -> Result<Arc<Live>, AppError> {
        if !valid_id(id) {
            return Err(not_found(id));
        }
        let known = lock(&self.uploads.open).get(id).cloned();
        let live = match known {
            Some(live) => live,
            None => {
                let dir = self.uploads_dir();
                let wanted = id.to_string();
                let Some(upload) = blocking(move || load(&dir, &wanted)).await? else {
                    return Err(not_found(id));
                };
                lock(&self.uploads.open)
                    .entry(id.to_string())
                    .or_insert_with(|| Arc::new(Live::new(upload)))
                    .clone()
            }
        };
        let owner = live.snapshot().owner;
        let visible = match &caller.who {
            Who::Open => true,
            Who::User { name, .. } => owner.as_deref() == Some(name.as_str()),
            Who::Anonymous | Who::Link { .. } => false,
        };
        if !visible {
            return Err(not_found(id));
        }
        self.told_failure(&live)?;
        if live.is_gone() {
            return Err(not_found(id));
        }
        Ok(live)
    }

    /// Why the ingest refused `live`'s file, told once: the upload is then
    /// forgotten.
    fn told_failure(&self, live: &Live) -> Result<(), AppError> {
        let Some(refused) = lock(&live.failure).take() else {
            return Ok(());
        };
        let id = live.snapshot().id;
        lock(&self.uploads.open).remove(&id);
        Err(refused)
    }

    /// Where upload `id` stands (`HEAD`). A complete upload whose ingest is
    /// not running (the server restarted while it ran) is ingested again.
    pub async fn upload_state(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
    ) -> Result<UploadState, AppError> {
        caller.require(Scope::Write)?;
        self.current_state(caller, id).await
    }

    /// Upload `id`'s state; a complete upload without its image and
    /// without a running ingest is ingested again (for a caller who may
    /// write: an ingest as a reader would be refused, and take the upload
    /// with it).
    async fn current_state(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
    ) -> Result<UploadState, AppError> {
        let live = self.open_upload(caller, id).await?;
        let state = live.snapshot();
        if state.offset == state.length && state.image_id.is_none() && caller.has(Scope::Write) {
            self.start_ingest(&live, caller, true)?;
        }
        Ok(state)
    }

    /// Upload `id` with its image once published (`GET /uploads/{id}`).
    pub async fn upload_progress(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
    ) -> Result<UploadProgress, AppError> {
        caller.require(Scope::Read)?;
        let state = self.current_state(caller, id).await?;
        let image = match &state.image_id {
            Some(image) => Some(self.image(caller, image).await?),
            None => None,
        };
        Ok(UploadProgress { state, image })
    }

    /// Removes upload `id`, its bytes and whatever its ingest staged.
    pub async fn terminate_upload(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        caller.require(Scope::Write)?;
        let live = self.open_upload(caller, id).await?;
        live.takeover.send_modify(|g| *g += 1);
        let _writer = live.writer.lock().await;
        live.remove(&self.uploads_dir());
        lock(&self.uploads.open).remove(id);
        tracing::info!(%id, "resumable upload terminated");
        Ok(())
    }

    /// Appends `body` to upload `id` at `offset`, which must be the
    /// upload's offset. The bytes that arrive are kept, flushed to disk,
    /// even when the body breaks off; with `checksum` (sha256), only a whole
    /// body whose digest matches is kept. The append that brings the last
    /// byte waits for the image to be published and returns it.
    pub async fn append_upload<S, E>(
        self: &Arc<Self>,
        caller: &Caller,
        id: &str,
        offset: u64,
        checksum: Option<[u8; 32]>,
        body: S,
    ) -> Result<Appended, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        caller.require(Scope::Write)?;
        let live = self.open_upload(caller, id).await?;
        // an append still writing (its client may be gone) stops for this one
        live.takeover.send_modify(|g| *g += 1);
        let takeover = live.takeover.subscribe();
        let writer = live.writer.lock().await;
        self.told_failure(&live)?;
        if live.is_gone() {
            return Err(not_found(id));
        }
        let state = live.snapshot();
        if offset != state.offset {
            return Err(AppError::Conflict(format!(
                "Upload-Offset {offset} is not the upload's offset {}: ask for it with HEAD \
                 and send from there",
                state.offset
            )));
        }
        if state.offset < state.length {
            self.start_ingest(&live, caller, false)?;
            let written = self.receive(&live, &state, checksum, body, takeover).await;
            let written = written?;
            if written < state.length {
                drop(writer);
                return Ok(Appended {
                    state: live.snapshot(),
                    image: None,
                });
            }
        }
        drop(writer);
        let image = self.published(&live, caller).await?;
        Ok(Appended {
            state: live.snapshot(),
            image: Some(image),
        })
    }

    /// Writes `body` to the staged file from the upload's offset, and saves
    /// the new offset; returns it.
    async fn receive<S, E>(
        self: &Arc<Self>,
        live: &Arc<Live>,
        state: &UploadState,
        checksum: Option<[u8; 32]>,
        mut body: S,
        mut takeover: tokio::sync::watch::Receiver<u64>,
    ) -> Result<u64, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send,
        E: std::fmt::Display,
    {
        let dir = self.uploads_dir();
        let paths = Paths::of(&dir, &state.id);
        let file = Arc::new(
            File::options()
                .write(true)
                .open(&paths.bytes)
                .map_err(|e| io_error("cannot open the upload's file", e))?,
        );
        let start = state.offset;
        let mut hasher = checksum.map(|_| Sha256::new());
        let mut pending = BytesMut::new();
        let mut written = start;
        let mut persisted = start;
        // why the body ended early, if it did
        let mut refusal = None;
        let mut complete = false;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(BODY_IDLE, body.next()) => next,
                _ = takeover.changed() => break,
            };
            let chunk = match next {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => {
                    complete = true;
                    break;
                }
                Ok(Some(Err(e))) => {
                    tracing::info!(id = %state.id, "resumable upload interrupted: {e}");
                    break;
                }
                Err(_) => {
                    tracing::info!(id = %state.id, "resumable upload idle for {BODY_IDLE:?}: ending the request");
                    break;
                }
            };
            let received = written + pending.len() as u64;
            if received + chunk.len() as u64 > state.length {
                refusal = Some(AppError::InvalidArguments(format!(
                    "the body runs past the upload's length ({} bytes, Upload-Length)",
                    state.length
                )));
                break;
            }
            if lock(&live.failure).is_some() || live.is_gone() {
                break;
            }
            if let Some(h) = &mut hasher {
                h.update(&chunk);
            }
            pending.extend_from_slice(&chunk);
            if pending.len() >= WRITE_BYTES {
                written = write_at(&file, written, pending.split().freeze()).await?;
                if hasher.is_none() {
                    live.feed(written);
                    if written - persisted >= PERSIST_BYTES {
                        persist(self, live, &file, written).await?;
                        persisted = written;
                    }
                }
            }
        }
        if !pending.is_empty() {
            written = write_at(&file, written, pending.split().freeze()).await?;
        }
        self.told_failure(live)?;
        let kept = match (hasher, checksum) {
            (Some(hasher), Some(expected)) => {
                let matches = complete && refusal.is_none() && hasher.finalize()[..] == expected;
                if !matches {
                    // the chunk is discarded
                    let file = file.clone();
                    blocking(move || {
                        file.set_len(start)
                            .map_err(|e| io_error("cannot discard the chunk", e))
                    })
                    .await?;
                    if complete && refusal.is_none() {
                        return Err(AppError::ChecksumMismatch(
                            "the body's sha256 is not the one in Upload-Checksum: the chunk \
                             was discarded, send it again"
                                .into(),
                        ));
                    }
                    return refusal.map_or(Ok(start), Err);
                }
                written
            }
            _ => written,
        };
        if kept != persisted {
            persist(self, live, &file, kept).await?;
        }
        live.feed(kept);
        refusal.map_or(Ok(kept), Err)
    }

    /// Starts the live ingest of `live` unless it runs (or, unless `force`,
    /// too many run).
    fn start_ingest(
        self: &Arc<Self>,
        live: &Arc<Live>,
        caller: &Caller,
        force: bool,
    ) -> Result<(), AppError> {
        let running = lock(&self.uploads.open)
            .values()
            .filter(|l| lock(&l.ingest).is_some())
            .count();
        let mut ingest = lock(&live.ingest);
        if ingest.is_some() || (!force && running >= MAX_LIVE_INGESTS) {
            return Ok(());
        }
        let state = live.snapshot();
        let paths = Paths::of(&self.uploads_dir(), &state.id);
        let file =
            File::open(&paths.bytes).map_err(|e| io_error("cannot open the upload's file", e))?;
        let spool = tempfile::Builder::new()
            .prefix("resumable-")
            .tempfile_in(self.config.spool_dir())
            .map_err(|e| io_error("cannot create a spool file", e))?
            .into_temp_path();
        let axes = state
            .axes
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .map(Axes::parse)
            .transpose()?;
        let feed = Arc::new(Feed::new(state.offset));
        let upload = UploadStream {
            body: Box::new(StagedBody {
                file,
                read: 0,
                length: state.length,
                feed: feed.clone(),
                axes,
            }),
            spool: spool.to_path_buf(),
            name: state.file_name.clone(),
            max_len: state.length,
            entry: state.entry.clone(),
        };
        *ingest = Some(Running {
            feed: feed.clone(),
            started: Instant::now(),
        });
        drop(ingest);
        let (app, live, caller) = (self.clone(), live.clone(), caller.clone());
        tokio::spawn(async move {
            let outcome = app
                .ingest_stream(&caller, upload, Arc::new(|_, _| {}))
                .await;
            drop(spool);
            app.settle(&live, &feed, outcome).await;
        });
        Ok(())
    }

    /// Records what the live ingest fed by `feed` came to.
    async fn settle(&self, live: &Live, feed: &Arc<Feed>, outcome: Result<ImageRecord, AppError>) {
        if feed.is_closed() {
            // stopped on purpose: a later append starts another
            return;
        }
        {
            let mut ingest = lock(&live.ingest);
            if ingest.as_ref().is_some_and(|r| Arc::ptr_eq(&r.feed, feed)) {
                *ingest = None;
            }
        }
        let dir = self.uploads_dir();
        let id = live.snapshot().id;
        match outcome {
            Ok(record) => {
                let expires_at = self.expiry_from_now();
                let image_id = record.id.to_string();
                if let Err(e) = live.update(&dir, |u| {
                    u.image_id = Some(image_id.clone());
                    u.expires_at = expires_at;
                }) {
                    // known to this process at least, so that it is not
                    // ingested twice
                    lock(&live.state).upload.image_id = Some(image_id);
                    tracing::error!(%id, "cannot record the published image of the upload: {e}");
                }
                let _ = std::fs::remove_file(Paths::of(&dir, &id).bytes);
                tracing::info!(%id, image = %record.id, "resumable upload published");
            }
            Err(refused) => {
                tracing::warn!(%id, "resumable upload refused: {refused}");
                // told before the upload is gone: waiters look for it first
                *lock(&live.failure) = Some(refused);
                live.remove(&dir);
            }
        }
        live.settled.notify_waiters();
    }

    /// Waits for the complete upload's image.
    async fn published(
        self: &Arc<Self>,
        live: &Arc<Live>,
        caller: &Caller,
    ) -> Result<ImageRecord, AppError> {
        loop {
            let settled = live.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            self.told_failure(live)?;
            let state = live.snapshot();
            if let Some(image) = &state.image_id {
                return self.image(caller, image).await;
            }
            if live.is_gone() {
                return Err(not_found(&state.id));
            }
            self.start_ingest(live, caller, true)?;
            settled.await;
        }
    }

    /// Stops every live ingest, as the process stops: after the restart,
    /// the next append ingests its upload again from the staged bytes.
    pub fn stop_live_ingests(&self) {
        for live in lock(&self.uploads.open).values() {
            live.stop_ingest();
        }
    }

    /// Removes expired uploads and stops live ingests that wait too long;
    /// returns how many uploads were removed.
    pub async fn sweep_uploads(&self) -> Result<usize, AppError> {
        let dir = self.uploads_dir();
        let now = unix_now();
        let listed = dir.clone();
        let expired = blocking(move || Ok(expired_uploads(&listed, now))).await?;
        for id in &expired {
            let live = lock(&self.uploads.open).get(id).cloned();
            match live {
                Some(live) => {
                    let state = live.snapshot();
                    // an append is writing, or the last byte is being ingested
                    let busy = live.writer.try_lock().is_err()
                        || (state.offset == state.length
                            && state.image_id.is_none()
                            && lock(&live.ingest).is_some());
                    if busy || state.expires_at > now {
                        continue;
                    }
                    live.remove(&dir);
                    lock(&self.uploads.open).remove(id);
                }
                None => Paths::of(&dir, id).remove(),
            }
            tracing::info!(%id, "resumable upload expired");
        }
        let open: Vec<Arc<Live>> = lock(&self.uploads.open).values().cloned().collect();
        for live in open {
            let waiting = lock(&live.ingest).as_ref().is_some_and(|r| {
                r.feed.idle_for() > LIVE_IDLE || r.started.elapsed() > LIVE_MAX_AGE
            });
            let state = live.snapshot();
            if waiting && state.offset < state.length && live.writer.try_lock().is_ok() {
                live.stop_ingest();
            }
        }
        Ok(expired.len())
    }
}

/// Flushes the staged bytes and saves `offset` as the upload's.
async fn persist(
    app: &App,
    live: &Arc<Live>,
    file: &Arc<File>,
    offset: u64,
) -> Result<(), AppError> {
    let file = file.clone();
    blocking(move || {
        file.sync_data()
            .map_err(|e| io_error("cannot flush the upload's file", e))
    })
    .await?;
    let (dir, live, expires_at) = (app.uploads_dir(), live.clone(), app.expiry_from_now());
    blocking(move || {
        live.update(&dir, |u| {
            u.offset = offset;
            u.expires_at = expires_at;
        })
    })
    .await
}

/// Writes `bytes` at `at`; returns where they end.
async fn write_at(file: &Arc<File>, at: u64, bytes: Bytes) -> Result<u64, AppError> {
    let file = file.clone();
    blocking(move || {
        file.write_all_at(&bytes, at)
            .map_err(|e| io_error("cannot write the upload's file", e))?;
        Ok(at + bytes.len() as u64)
    })
    .await
}

/// Reads upload `id`'s state, cutting off a staged tail its offset does
/// not count (written but not flushed when the process stopped).
fn load(dir: &Path, id: &str) -> Result<Option<UploadState>, AppError> {
    let paths = Paths::of(dir, id);
    let text = match std::fs::read(&paths.state) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("cannot read the upload's state", e)),
    };
    let Ok(mut upload) = serde_json::from_slice::<UploadState>(&text) else {
        tracing::warn!(%id, "removing a resumable upload whose state cannot be read");
        paths.remove();
        return Ok(None);
    };
    if upload.image_id.is_some() {
        return Ok(Some(upload));
    }
    let staged = match File::options().write(true).open(&paths.bytes) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(%id, "removing a resumable upload whose bytes are missing");
            paths.remove();
            return Ok(None);
        }
        Err(e) => return Err(io_error("cannot open the upload's file", e)),
    };
    let len = staged
        .metadata()
        .map_err(|e| io_error("cannot read the upload's file", e))?
        .len();
    if len > upload.offset {
        staged
            .set_len(upload.offset)
            .map_err(|e| io_error("cannot cut the upload's file", e))?;
    } else if len < upload.offset {
        // flushed bytes cannot be missing unless the disk lost them
        upload.offset = len;
        save(dir, &upload)?;
    }
    Ok(Some(upload))
}

/// The states kept in `dir`.
fn states(dir: &Path) -> Vec<UploadState> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|text| serde_json::from_slice::<UploadState>(&text).ok())
        .collect()
}

/// How many unfinished uploads `owner` has.
fn open_uploads_of(dir: &Path, owner: Option<&str>) -> usize {
    states(dir)
        .iter()
        .filter(|s| s.owner.as_deref() == owner && s.image_id.is_none())
        .count()
}

/// The uploads in `dir` that expired by `now`.
fn expired_uploads(dir: &Path, now: u64) -> Vec<String> {
    states(dir)
        .into_iter()
        .filter(|s| s.expires_at <= now && valid_id(&s.id))
        .map(|s| s.id)
        .collect()
}
