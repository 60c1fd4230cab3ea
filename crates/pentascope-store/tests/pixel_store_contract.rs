//! One contract every pixel backend keeps: each contract is one function
//! generic over the backend, instantiated as a test per backend by
//! `contract_tests!` (as zarrs tests its stores): the local directory store
//! with each durability always, and the S3 store against an S3 server
//! (`PENTASCOPE_TEST_S3`, default http://127.0.0.1:5055, as `.ci/run`
//! starts moto; ignored by a plain `cargo test`, and failing loudly when
//! run without a server: `cargo test -p pentascope-store --test
//! pixel_store_contract -- --ignored s3`).
//!
//! Committed images read back exactly as written (whole rows, regions,
//! pyramid levels, the Zarr keys readers fetch), are listed, and are gone
//! when deleted; aborted images leave nothing. Backends that stage (the
//! local store: a staging folder renamed on commit) also keep uncommitted
//! images invisible and clear them after a crash; object stores have no
//! rename, so there an image exists once its database record does, and what
//! a crash left is an orphan for `pentascope check --repair`.

use std::sync::{Arc, Once};

use pentascope_core::{DType, PlaneIndex, Shape5};
use pentascope_store::pixels::{
    ArrayLayout, Compression, Durability, ImageAttributes, LocalStore, PixelStore, S3Store,
};
use pentascope_store::record::ImageId;
use pentascope_store::StoreError;

/// A store under test, and what it needs to live.
struct Backend {
    store: Arc<dyn PixelStore>,
    /// Whether it keeps uncommitted images apart (a staging area).
    stages: bool,
    /// The local store's directory, or the S3 store's runtime.
    _keep: Box<dyn std::any::Any>,
}

/// A local store in a fresh directory.
fn local(durability: Durability) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path(), durability).unwrap();
    Backend {
        store: Arc::new(store),
        stages: true,
        _keep: Box::new(dir),
    }
}

/// An S3 store under a prefix of its own (`test`: the test's name) in a
/// bucket of the S3 server at `PENTASCOPE_TEST_S3`; panics if there is none.
fn s3(test: &str) -> Backend {
    let endpoint =
        std::env::var("PENTASCOPE_TEST_S3").unwrap_or_else(|_| "http://127.0.0.1:5055".into());
    let bucket = "pentascope-contract";
    // S3-compatible test servers create a bucket on an unsigned PUT
    let created = std::process::Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .status()
        .expect("run curl");
    assert!(created.success(), "no S3 server at {endpoint}");
    // the store reads its endpoint and keys from the environment, as
    // `pentascope serve` does; this test binary's only S3 user sets them,
    // once, before any store reads them
    static ENVIRONMENT: Once = Once::new();
    ENVIRONMENT.call_once(|| {
        for (key, value) in [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ] {
            std::env::set_var(key, value);
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = {
        let _entered = runtime.enter();
        let prefix = format!("contract-{}-{test}", std::process::id());
        S3Store::from_url(&format!("s3://{bucket}/{prefix}")).unwrap()
    };
    Backend {
        store: Arc::new(store),
        stages: false,
        _keep: Box::new(runtime),
    }
}

/// A test per contract for the backend `make(test name)` gives, in a
/// module `$backend`: the contracts of every backend, and those named
/// after `staging:` (for backends that stage); `$ignore`: why the tests
/// need `--ignored`, if they do.
macro_rules! contract_tests {
    ($backend:ident, $make:expr $(, ignore = $ignore:literal)? $(, staging: $($staging:ident),+)?) => {
        mod $backend {
            contract_tests!(@each $make, [$(#[ignore = $ignore])?];
                committed_images_read_back_as_written,
                zarr_keys_are_served,
                aborted_writes_leave_nothing,
                deleted_images_are_gone,
                $($($staging,)+)?
            );
        }
    };
    (@each $make:expr, [$($attribute:tt)*]; $contract:ident, $($rest:ident,)*) => {
        #[test]
        $($attribute)*
        fn $contract() {
            let make: fn(&str) -> super::Backend = $make;
            super::$contract(&make(stringify!($contract)));
        }
        contract_tests!(@each $make, [$($attribute)*]; $($rest,)*);
    };
    (@each $make:expr, [$($attribute:tt)*];) => {};
}

contract_tests!(
    local_sync,
    |_| super::local(super::Durability::Sync),
    staging: uncommitted_images_stay_invisible
);
contract_tests!(
    local_os,
    |_| super::local(super::Durability::Os),
    staging: uncommitted_images_stay_invisible
);
contract_tests!(
    s3,
    super::s3,
    ignore = "needs an S3 server (PENTASCOPE_TEST_S3, default http://127.0.0.1:5055); .ci/run starts moto"
);

/// A uint16 image of 2 planes of 2100 × 2300 pixels (sharded, with stored
/// pyramid levels), each sample a function of its position.
fn layout() -> ArrayLayout {
    let layout = ArrayLayout::for_image(Shape5::new(1, 2, 1, 2100, 2300), DType::U16);
    assert!(layout.levels > 0, "{layout:?}");
    layout
}

fn sample(z: u64, y: u64, x: u64) -> u16 {
    ((z * 7919 + y * 131 + x * 17) % 65521) as u16
}

fn plane_bytes(layout: &ArrayLayout, z: u64, rows: std::ops::Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for y in rows {
        for x in 0..layout.shape.x {
            out.extend_from_slice(&sample(z, y, x).to_ne_bytes());
        }
    }
    out
}

/// Writes every plane of [`layout`] band by band.
fn write(
    store: &dyn PixelStore,
    id: ImageId,
    compression: Compression,
) -> Box<dyn pentascope_store::pixels::PixelWriter> {
    let layout = layout();
    let writer = store
        .create(id, layout, &ImageAttributes::default(), compression)
        .unwrap();
    for z in 0..layout.shape.z {
        let mut y0 = 0;
        while y0 < layout.shape.y {
            let y1 = (y0 + layout.chunk_y).min(layout.shape.y);
            writer
                .write_band(
                    PlaneIndex::new(0, z, 0),
                    y0,
                    &plane_bytes(&layout, z, y0..y1),
                )
                .unwrap();
            y0 = y1;
        }
    }
    writer
}

/// Every row, a region and a pyramid level of a committed image read back
/// as written; so does what its writer staged, before the commit.
fn committed_images_read_back_as_written(backend: &Backend) {
    let (store, layout) = (&backend.store, layout());
    store.ping().unwrap();
    let id = ImageId(1);
    let writer = write(&**store, id, Compression::FAST);
    let mut band = vec![0u8; 3 * layout.shape.x as usize * 2];
    writer
        .read_rows(PlaneIndex::new(0, 1, 0), 5..8, &mut band)
        .unwrap();
    assert_eq!(band, plane_bytes(&layout, 1, 5..8));
    writer.commit().unwrap();

    let reader = store.open(id).unwrap();
    assert_eq!(reader.layout().shape, layout.shape);
    assert_eq!(reader.layout().dtype, layout.dtype);
    for z in 0..layout.shape.z {
        let plane = reader.read_plane::<u16>(PlaneIndex::new(0, z, 0)).unwrap();
        assert!(
            bytemuck::cast_slice::<u16, u8>(&plane) == plane_bytes(&layout, z, 0..layout.shape.y),
            "{}: plane {z} differs",
            store.backend()
        );
    }
    let (rows, columns) = (517..603u64, 1021..2300u64);
    let mut region =
        vec![0u8; ((rows.end - rows.start) * (columns.end - columns.start) * 2) as usize];
    reader
        .read_region(
            0,
            PlaneIndex::new(0, 1, 0),
            rows.clone(),
            columns.clone(),
            &mut region,
        )
        .unwrap();
    let want: Vec<u8> = rows
        .flat_map(|y| columns.clone().map(move |x| sample(1, y, x)))
        .flat_map(u16::to_ne_bytes)
        .collect();
    assert!(region == want, "{}: region differs", store.backend());
    let mut level = vec![0u8; 2 * 2 * 2];
    reader
        .read_region(1, PlaneIndex::new(0, 0, 0), 0..2, 0..2, &mut level)
        .unwrap();
    // level 1 is the mean of 2 × 2 blocks, rounded half away from zero
    let mean = |y: u64, x: u64| {
        let sum: u64 = [(0, 0), (0, 1), (1, 0), (1, 1)]
            .iter()
            .map(|(dy, dx)| u64::from(sample(0, 2 * y + dy, 2 * x + dx)))
            .sum();
        ((sum + 2) / 4) as u16
    };
    let want: Vec<u8> = [(0, 0), (0, 1), (1, 0), (1, 1)]
        .iter()
        .flat_map(|(y, x)| mean(*y, *x).to_ne_bytes())
        .collect();
    assert_eq!(level, want, "{}: pyramid level 1", store.backend());
    assert!(store.list_images().unwrap().published.contains(&id));
}

/// The Zarr keys a remote reader fetches, whole or in part; keys that are
/// not stored objects have no size and nothing to read.
fn zarr_keys_are_served(backend: &Backend) {
    let store = &backend.store;
    let id = ImageId(1);
    write(&**store, id, Compression::Zstd(1)).commit().unwrap();
    let size = store.key_size(id, "zarr.json").unwrap().expect("zarr.json");
    let group = store.read_key(id, "zarr.json", 0, size).unwrap().unwrap();
    let group: serde_json::Value = serde_json::from_slice(&group).unwrap();
    assert_eq!(group["zarr_format"], 3, "{group}");
    assert_eq!(group["node_type"], "group", "{group}");
    let array = store
        .key_size(id, "0/zarr.json")
        .unwrap()
        .expect("0/zarr.json");
    let head = store.read_key(id, "0/zarr.json", 0, 1).unwrap().unwrap();
    assert_eq!(&head[..], b"{");
    assert!(array > 1);
    assert_eq!(store.key_size(id, "0/no-such-key").unwrap(), None);
    assert!(store.read_key(id, "no-such-key", 0, 1).unwrap().is_none());
}

/// An aborted write leaves nothing listed and nothing to open.
fn aborted_writes_leave_nothing(backend: &Backend) {
    let store = &backend.store;
    let (kept, aborted) = (ImageId(1), ImageId(2));
    write(&**store, kept, Compression::None).commit().unwrap();
    write(&**store, aborted, Compression::None).abort();
    let listed = store.list_images().unwrap();
    assert!(listed.published.contains(&kept), "{listed:?}");
    assert!(
        !listed.published.contains(&aborted) && !listed.staged.contains(&aborted),
        "{}: {aborted} left behind: {listed:?}",
        store.backend()
    );
    assert!(matches!(store.open(aborted), Err(StoreError::NotFound(_))));
}

/// A deleted image is gone, and deleting it again is no error.
fn deleted_images_are_gone(backend: &Backend) {
    let store = &backend.store;
    let id = ImageId(1);
    write(&**store, id, Compression::FAST).commit().unwrap();
    store.delete(id).unwrap();
    assert!(matches!(store.open(id), Err(StoreError::NotFound(_))));
    assert_eq!(store.key_size(id, "zarr.json").unwrap(), None);
    assert!(!store.list_images().unwrap().published.contains(&id));
    store.delete(id).unwrap();
}

/// An image being written does not open, serves no key and is listed as
/// staged only; clearing the staging area (after a crash) removes it.
fn uncommitted_images_stay_invisible(backend: &Backend) {
    assert!(backend.stages);
    let store = &backend.store;
    let id = ImageId(3);
    let _left = write(&**store, id, Compression::Zstd(1));
    assert!(
        matches!(store.open(id), Err(StoreError::NotFound(_))),
        "{}: a staged image must not open",
        store.backend()
    );
    assert_eq!(store.key_size(id, "zarr.json").unwrap(), None);
    let listed = store.list_images().unwrap();
    assert!(!listed.published.contains(&id), "{listed:?}");
    assert!(listed.staged.contains(&id), "{listed:?}");
    store.clear_staging().unwrap();
    let listed = store.list_images().unwrap();
    assert!(
        !listed.published.contains(&id) && !listed.staged.contains(&id),
        "{}: {id} left behind: {listed:?}",
        store.backend()
    );
    assert!(matches!(store.open(id), Err(StoreError::NotFound(_))));
}
