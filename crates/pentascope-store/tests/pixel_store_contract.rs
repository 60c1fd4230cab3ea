//! One contract every pixel backend keeps, run against each: the local
//! directory store always, and the S3 store against an S3 server
//! (`PENTASCOPE_TEST_S3`, default http://127.0.0.1:5055, as `.ci/run`
//! starts moto; ignored by a plain `cargo test`).
//!
//! Committed images read back exactly as written (whole rows, regions,
//! pyramid levels, the Zarr keys readers fetch), are listed, and are gone
//! when deleted; aborted images leave nothing. Backends that stage (the
//! local store: a staging folder renamed on commit) also keep uncommitted
//! images invisible and clear them after a crash; object stores have no
//! rename, so there an image exists once its database record does, and what
//! a crash left is an orphan for `pentascope check --repair`.

use std::sync::Arc;

use pentascope_core::{DType, PlaneIndex, Shape5};
use pentascope_store::pixels::{
    ArrayLayout, Compression, Durability, ImageAttributes, LocalStore, PixelStore, S3Store,
};
use pentascope_store::record::ImageId;
use pentascope_store::StoreError;

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

/// Runs the contract on `store`; `stages`: whether it keeps uncommitted
/// images apart.
fn contract(store: Arc<dyn PixelStore>, stages: bool) {
    let layout = layout();
    store.ping().unwrap();
    let (id, aborted, staged) = (ImageId(1), ImageId(2), ImageId(3));

    let writer = write(&*store, id, Compression::FAST);
    if stages {
        // staged: not readable, listed as staged only
        assert!(
            matches!(store.open(id), Err(StoreError::NotFound(_))),
            "{}: a staged image must not open",
            store.backend()
        );
        assert_eq!(store.key_size(id, "zarr.json").unwrap(), None);
        let listed = store.list_images().unwrap();
        assert!(!listed.published.contains(&id), "{listed:?}");
        assert!(listed.staged.contains(&id), "{listed:?}");
    }
    // the writer reads back what it staged
    let mut band = vec![0u8; 3 * layout.shape.x as usize * 2];
    writer
        .read_rows(PlaneIndex::new(0, 1, 0), 5..8, &mut band)
        .unwrap();
    assert_eq!(band, plane_bytes(&layout, 1, 5..8));
    writer.commit().unwrap();

    // published: every row, a region and a level read back as written
    let reader = store.open(id).unwrap();
    assert_eq!(reader.layout().shape, layout.shape);
    assert_eq!(reader.layout().dtype, layout.dtype);
    for z in 0..layout.shape.z {
        let mut plane = vec![0u8; (layout.shape.y * layout.shape.x * 2) as usize];
        reader
            .read_rows(PlaneIndex::new(0, z, 0), 0..layout.shape.y, &mut plane)
            .unwrap();
        assert!(
            plane == plane_bytes(&layout, z, 0..layout.shape.y),
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
    {
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
    }

    // the Zarr keys a remote reader fetches
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

    // aborted: nothing left; staged and cleared (after a crash): nothing
    write(&*store, aborted, Compression::None).abort();
    let mut gone = vec![aborted];
    if stages {
        let _left = write(&*store, staged, Compression::Zstd(1));
        store.clear_staging().unwrap();
        gone.push(staged);
    }
    let listed = store.list_images().unwrap();
    assert!(listed.published.contains(&id), "{listed:?}");
    for gone in gone {
        assert!(
            !listed.published.contains(&gone) && !listed.staged.contains(&gone),
            "{}: {gone} left behind: {listed:?}",
            store.backend()
        );
        assert!(matches!(store.open(gone), Err(StoreError::NotFound(_))));
    }

    // deleted: gone, and deleting again is no error
    store.delete(id).unwrap();
    assert!(matches!(store.open(id), Err(StoreError::NotFound(_))));
    assert_eq!(store.key_size(id, "zarr.json").unwrap(), None);
    assert!(!store.list_images().unwrap().published.contains(&id));
    store.delete(id).unwrap();
}

#[test]
fn local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::Sync, Durability::Os] {
        let store =
            LocalStore::new(&dir.path().join(format!("{durability:?}")), durability).unwrap();
        contract(Arc::new(store), true);
    }
}

#[test]
#[ignore = "needs an S3 server (PENTASCOPE_TEST_S3, default http://127.0.0.1:5055); .ci/run starts moto"]
fn s3_store_keeps_the_contract() {
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
    // `pentascope serve` does; this test binary's only S3 user sets them
    for (key, value) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        std::env::set_var(key, value);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let prefix = format!("contract-{}", std::process::id());
    let store = S3Store::from_url(&format!("s3://{bucket}/{prefix}")).unwrap();
    contract(Arc::new(store), false);
}
