//! Reading a file's IFDs while its bytes arrive: what an upload that is
//! stored as it streams in needs to place pages before the file is whole.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::ifd::{read_ifds, ChainWalk};
use crate::{IfdChain, Limits, PageLayout, TiffError};

/// The most entries an IFD may have for it to be read while streaming.
pub const MAX_STREAMED_ENTRIES: u64 = 1 << 16;

/// An IFD [`IfdStream::step`] read.
#[derive(Debug, Clone)]
pub struct StreamedIfd {
    /// Its position in the chain (0 for the first).
    pub index: usize,
    /// Its page, where it is an image the reader can decode.
    pub page: Option<PageLayout>,
}

/// Where reading the IFD chain from the arriving bytes has got to.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Header,
    /// An IFD's entry count, at this offset.
    Count(u64),
    /// An IFD's entries.
    Entries {
        at: u64,
        count: u64,
    },
    /// An IFD whose tag values end at `end`.
    Values {
        at: u64,
        end: u64,
    },
}

/// Reads the IFDs of a file whose bytes are still arriving, one at a time,
/// from the partial copy the caller keeps at their offsets (a sparse
/// spool). [`IfdStream::need`] says how many bytes must have arrived for the
/// next step, [`IfdStream::step`] takes it.
///
/// It stops at anything it does not expect (an entry count past
/// [`MAX_STREAMED_ENTRIES`], a value past the end, a loop): the whole chain,
/// read with [`TiffFile::open`](crate::TiffFile::open) once the file is
/// complete, then says what is wrong, so streaming never refuses a file the
/// reader would accept.
///
/// ```no_run
/// # use std::fs::File;
/// # use pentascope_tiff::{incremental::IfdStream, Limits};
/// # fn main() -> Result<(), pentascope_tiff::TiffError> {
/// let spool = File::open("arriving.tif")?;
/// let mut ifds = IfdStream::new(1 << 30, &Limits::default());
/// let arrived = spool.metadata()?.len();
/// while let Some(need) = ifds.need() {
///     if need > arrived {
///         break; // wait for more bytes
///     }
///     if let Some(ifd) = ifds.step(&spool)? {
///         println!("IFD {} read, usable page: {}", ifd.index, ifd.page.is_some());
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct IfdStream {
    stage: Stage,
    max_len: u64,
    limits: Limits,
    big_endian: bool,
    bigtiff: bool,
    /// The first IFD, with the file's metadata.
    first: Option<IfdChain>,
    /// IFDs read.
    ifds: usize,
    seen: HashSet<u64>,
    stopped: bool,
}

impl IfdStream {
    /// Starts reading a file that will be at most `max_len` bytes long.
    pub fn new(max_len: u64, limits: &Limits) -> IfdStream {
        IfdStream {
            stage: Stage::Header,
            max_len,
            limits: *limits,
            big_endian: false,
            bigtiff: false,
            first: None,
            ifds: 0,
            seen: HashSet::new(),
            stopped: false,
        }
    }

    fn offset_bytes(&self) -> u64 {
        if self.bigtiff {
            8
        } else {
            4
        }
    }

    fn count_bytes(&self) -> u64 {
        if self.bigtiff {
            8
        } else {
            2
        }
    }

    fn entry_bytes(&self) -> u64 {
        if self.bigtiff {
            20
        } else {
            12
        }
    }

    /// Bytes that must have arrived (from the start of the file) for the
    /// next [`IfdStream::step`], or `None` once the stream has stopped.
    pub fn need(&self) -> Option<u64> {
        if self.stopped {
            return None;
        }
        match self.stage {
            Stage::Header => Some(16),
            Stage::Count(at) => at.checked_add(self.count_bytes()),
            Stage::Entries { at, count } => count
                .checked_mul(self.entry_bytes())
                .and_then(|n| n.checked_add(at + self.count_bytes() + self.offset_bytes())),
            Stage::Values { end, .. } => Some(end),
        }
    }

    fn number(&self, bytes: &[u8]) -> u64 {
        let mut word = [0u8; 8];
        if self.big_endian {
            word[8 - bytes.len()..].copy_from_slice(bytes);
            u64::from_be_bytes(word)
        } else {
            word[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(word)
        }
    }

    fn stopped(&mut self) -> Result<Option<StreamedIfd>, TiffError> {
        self.stopped = true;
        Ok(None)
    }

    /// Stops reading: the rest of the file is read whole once it is in.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether the first IFD has been read, or will not be.
    pub fn decided(&self) -> bool {
        self.first.is_some() || self.stopped
    }

    /// The first IFD, with the file's metadata (description, flavour
    /// headers), once read: what [`Series::predicted`](crate::Series::predicted)
    /// predicts the series from.
    pub fn first(&self) -> Option<&IfdChain> {
        self.first.as_ref()
    }

    /// Whether the file is big-endian (known once the header is read).
    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// The longest the file may be, as given to [`IfdStream::new`].
    pub fn max_len(&self) -> u64 {
        self.max_len
    }

    /// One step, reading from `spool` the bytes [`IfdStream::need`] said;
    /// reading an IFD gives its index and its page (where usable).
    pub fn step(&mut self, spool: &File) -> Result<Option<StreamedIfd>, TiffError> {
        match self.stage {
            Stage::Header => {
                let mut header = [0u8; 16];
                FileExt::read_exact_at(spool, &mut header, 0)?;
                let (big_endian, bigtiff) = match &header[..4] {
                    b"II*\0" => (false, false),
                    b"MM\0*" => (true, false),
                    b"II+\0" => (false, true),
                    b"MM\0+" => (true, true),
                    _ => return self.stopped(),
                };
                self.big_endian = big_endian;
                self.bigtiff = bigtiff;
                let first = if bigtiff {
                    self.number(&header[8..16])
                } else {
                    self.number(&header[4..8])
                };
                self.next(first)
            }
            Stage::Count(at) => {
                let mut count = [0u8; 8];
                let n = self.count_bytes() as usize;
                FileExt::read_exact_at(spool, &mut count[..n], at)?;
                let count = self.number(&count[..n]);
                if count == 0 || count > MAX_STREAMED_ENTRIES {
                    return self.stopped();
                }
                self.stage = Stage::Entries { at, count };
                Ok(None)
            }
            Stage::Entries { at, count } => {
                let table_at = at + self.count_bytes();
                let entry = self.entry_bytes();
                // count ≤ MAX_STREAMED_ENTRIES: a table of at most 1.3 MB
                let mut table = vec![0u8; (count * entry) as usize];
                FileExt::read_exact_at(spool, &mut table, table_at)?;
                let mut end = table_at + count * entry + self.offset_bytes();
                let inline = self.offset_bytes();
                for e in table.chunks_exact(entry as usize) {
                    let kind = self.number(&e[2..4]);
                    let (values, field) = if self.bigtiff {
                        (self.number(&e[4..12]), &e[12..20])
                    } else {
                        (self.number(&e[4..8]), &e[8..12])
                    };
                    let size = match kind {
                        1 | 2 | 6 | 7 => 1u64,
                        3 | 8 => 2,
                        4 | 9 | 11 | 13 => 4,
                        _ => 8,
                    };
                    let Some(bytes) = values.checked_mul(size) else {
                        return self.stopped();
                    };
                    if bytes <= inline {
                        continue;
                    }
                    match self.number(field).checked_add(bytes) {
                        Some(value_end) if value_end <= self.max_len => end = end.max(value_end),
                        _ => return self.stopped(),
                    }
                }
                self.stage = Stage::Values { at, end };
                Ok(None)
            }
            Stage::Values { at, .. } => {
                let walk = ChainWalk {
                    start: (self.ifds > 0).then_some(at),
                    max_ifds: Some(1),
                };
                let Ok(mut chain) = read_ifds(spool, self.max_len, &self.limits, walk) else {
                    return self.stopped();
                };
                let index = self.ifds;
                self.ifds += 1;
                let next = chain.next_ifd;
                let page = match chain.pages.pop() {
                    Some(Ok(page)) => Some(page),
                    _ => None,
                };
                if index == 0 {
                    // the first page stays in the chain the series is predicted from
                    chain.pages.push(page.clone().ok_or_else(|| {
                        TiffError::Format("the first IFD has no usable image".into())
                    }));
                    self.first = Some(chain);
                }
                match next {
                    Some(offset) if (self.ifds as u64) < self.limits.max_pages => {
                        self.next(offset)?;
                    }
                    _ => self.stopped = true,
                }
                Ok(Some(StreamedIfd { index, page }))
            }
        }
    }

    fn next(&mut self, offset: u64) -> Result<Option<StreamedIfd>, TiffError> {
        if offset == 0 || offset >= self.max_len || !self.seen.insert(offset) {
            return self.stopped();
        }
        self.stage = Stage::Count(offset);
        Ok(None)
    }
}
