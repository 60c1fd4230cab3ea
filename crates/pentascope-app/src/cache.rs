//! Bounded caches on the slice path: open pixel readers (their array
//! metadata parsed once) and rendered slices keyed by everything that
//! determines their bytes, within a byte budget. Image ids are never reused,
//! so an entry can only go stale by deletion, which evicts it.

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;
use pentascope_core::PlaneIndex;
use pentascope_store::pixels::PixelReader;
use pentascope_store::ImageId;

use crate::monitoring::cache_lookup;

/// Open readers kept at most.
const READERS: usize = 64;
/// A body to keep is copied when its spare room exceeds this part of it.
const SPARE_ROOM_PART: usize = 16;

/// What a rendered slice depends on besides the pixels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SliceKey {
    /// The image.
    pub id: ImageId,
    /// The plane.
    pub plane: PlaneIndex,
    /// The rendering, e.g. `png8:<low bits>:<high bits>`, `png16`, `npy`.
    pub rendering: String,
}

/// The caches, shared by all handlers.
pub struct Caches {
    readers: Mutex<LruCache<ImageId, Arc<dyn PixelReader>>>,
    slices: Mutex<SliceCache>,
}

struct SliceCache {
    entries: LruCache<SliceKey, Bytes>,
    used: usize,
    budget: usize,
}

impl Caches {
    /// Caches holding at most `slice_budget` bytes of rendered slices.
    pub fn new(slice_budget: usize) -> Caches {
        Caches {
            readers: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(READERS).expect("non-zero"),
            )),
            slices: Mutex::new(SliceCache {
                entries: LruCache::unbounded(),
                used: 0,
                budget: slice_budget,
            }),
        }
    }

    /// The open reader of `id`, opening it with `open` on a miss.
    pub fn reader<E>(
        &self,
        id: ImageId,
        open: impl FnOnce() -> Result<Arc<dyn PixelReader>, E>,
    ) -> Result<Arc<dyn PixelReader>, E> {
        if let Some(r) = lock(&self.readers).get(&id) {
            cache_lookup("reader", true);
            return Ok(r.clone());
        }
        cache_lookup("reader", false);
        let reader = open()?;
        lock(&self.readers).put(id, reader.clone());
        Ok(reader)
    }

    /// A rendered slice, if cached.
    pub fn slice(&self, key: &SliceKey) -> Option<Bytes> {
        let found = lock(&self.slices).entries.get(key).cloned();
        cache_lookup("rendered", found.is_some());
        found
    }

    /// Keeps a rendered slice, evicting the least recently used ones to stay
    /// within the budget (a slice larger than the budget is not kept), and
    /// gives it back to be sent.
    ///
    /// Encoders reserve room for their worst case, and an allocator may keep
    /// a shrunk block whole, so a body with much room to spare is copied to
    /// one of its own size: the budget then counts the memory held.
    pub fn keep_slice(&self, key: SliceKey, body: Vec<u8>) -> Bytes {
        let mut cache = lock(&self.slices);
        if body.len() > cache.budget {
            // not kept (with no cache, no slice is): sent as it is
            return Bytes::from(body);
        }
        let body = if body.capacity() - body.len() > body.len() / SPARE_ROOM_PART {
            Bytes::copy_from_slice(&body)
        } else {
            Bytes::from(body)
        };
        if let Some(old) = cache.entries.put(key, body.clone()) {
            cache.used -= old.len();
        }
        cache.used += body.len();
        while cache.used > cache.budget {
            match cache.entries.pop_lru() {
                Some((_, evicted)) => cache.used -= evicted.len(),
                None => break,
            }
        }
        body
    }

    /// Forgets everything about a deleted image.
    pub fn forget(&self, id: ImageId) {
        lock(&self.readers).pop(&id);
        let mut cache = lock(&self.slices);
        let stale: Vec<SliceKey> = cache
            .entries
            .iter()
            .filter(|(k, _)| k.id == id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            if let Some(v) = cache.entries.pop(&k) {
                cache.used -= v.len();
            }
        }
    }

    /// Bytes of rendered slices held.
    pub fn slice_bytes(&self) -> usize {
        lock(&self.slices).used
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // a panic while holding a cache lock leaves a cache, not broken data
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, c: u64) -> SliceKey {
        SliceKey {
            id: ImageId(id),
            plane: PlaneIndex::new(0, 0, c),
            rendering: "npy".into(),
        }
    }

    #[test]
    fn slices_stay_within_budget_and_deleted_images_are_forgotten() {
        let caches = Caches::new(10);
        caches.keep_slice(key(1, 0), b"aaaa".to_vec());
        caches.keep_slice(key(1, 1), b"bbbb".to_vec());
        assert!(caches.slice(&key(1, 0)).is_some());
        caches.keep_slice(key(2, 0), b"cccc".to_vec());
        assert_eq!(caches.slice_bytes(), 8);
        assert!(
            caches.slice(&key(1, 1)).is_none(),
            "least recently used went first"
        );
        caches.keep_slice(key(3, 0), vec![0u8; 11]);
        assert!(caches.slice(&key(3, 0)).is_none(), "larger than the budget");
        caches.forget(ImageId(1));
        assert!(caches.slice(&key(1, 0)).is_none());
        assert_eq!(caches.slice_bytes(), 4);
        let mut roomy = Vec::with_capacity(1 << 20);
        roomy.extend_from_slice(b"dd");
        let kept = caches.keep_slice(key(4, 0), roomy);
        assert_eq!(&kept[..], b"dd");
        assert_eq!(caches.slice_bytes(), 6);
    }
}
