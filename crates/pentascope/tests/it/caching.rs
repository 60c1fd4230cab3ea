//! Conditional GET over HTTP: what is computed from an image carries a
//! strong `ETag` and `Cache-Control`; the tag sent back in `If-None-Match`
//! is answered 304 with no body until the pixels or (for what is drawn with
//! it) the image's look change; a deleted image is 404 whatever the tag.

use reqwest::Method;
use serde_json::json;

use crate::util::{fixtures_dir, FixtureSet, Resp, Server};

const FILE: &str = "ome_tczyx_u16.ome.tif";

fn conditional(server: &Server, path: &str, tag: &str) -> Resp {
    server.send(
        &format!("GET {path} If-None-Match: {tag}"),
        server
            .request(Method::GET, path)
            .header("If-None-Match", tag),
    )
}

/// First GET: 200 with a strong tag and `no-cache`; the tag again: 304,
/// empty, the same tag; as a weak tag or in a list: 304; another tag: 200.
fn tag_of(server: &Server, path: &str) -> String {
    let first = server.get(path);
    assert_eq!(first.status, 200, "{path}: {}", first.snippet());
    let tag = first.header("etag").to_string();
    assert!(
        tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"'),
        "{path}: ETag {tag:?}"
    );
    assert_eq!(first.header("cache-control"), "no-cache", "{path}");
    let again = conditional(server, path, &tag);
    assert_eq!((again.status, again.body.len()), (304, 0), "{path}");
    assert_eq!(again.header("etag"), tag, "{path}");
    assert_eq!(again.header("cache-control"), "no-cache", "{path}");
    for listed in [format!("W/{tag}"), format!("\"other\", {tag}")] {
        assert_eq!(
            conditional(server, path, &listed).status,
            304,
            "{path} {listed}"
        );
    }
    let other = conditional(server, path, "\"0123\"");
    assert_eq!(other.status, 200, "{path}");
    assert_eq!(other.body, first.body, "{path}");
    assert_eq!(
        conditional(server, path, "*").status,
        200,
        "{path}: * is not honoured"
    );
    tag
}

#[test]
fn tags_answer_304_until_the_look_changes_or_the_image_goes() {
    let set = FixtureSet::load(&fixtures_dir(), "tiff");
    let server = Server::start();
    let id = server.upload_ok(FILE, set.read(FILE));
    let drawn = [
        format!("/render?image_id={id}&z=1"),
        format!("/thumbnail?image_id={id}"),
        format!("/zarr/{id}/zarr.json"),
        // auto-contrast, from the statistics
        format!("/slice?image_id={id}&z=1"),
    ];
    // the pixels alone: exact samples, fixed windows, the arrays
    let pixels = [
        format!("/slice?image_id={id}&z=1&format=npy"),
        format!("/slice?image_id={id}&z=1&min=0&max=3000"),
        format!("/zarr/{id}/0/zarr.json"),
        format!("/zarr/{id}/0/c/1/2/3/0/0"),
    ];
    // what follows from the pixels alone was last modified when the image
    // was made; what is drawn with the look has no date (a PATCH has none)
    let created =
        humantime::parse_rfc3339(server.metadata(&id)["created_at"].as_str().unwrap()).unwrap();
    for path in &pixels {
        let date = server.get(path).header("last-modified").to_string();
        assert_eq!(date, httpdate::fmt_http_date(created), "{path}");
    }
    for path in &drawn {
        assert_eq!(server.get(path).header("last-modified"), "", "{path}");
    }
    let before: Vec<String> = drawn
        .iter()
        .chain(&pixels)
        .map(|p| tag_of(&server, p))
        .collect();
    let mut distinct = before.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        before.len(),
        "a tag per response: {before:?}"
    );
    // a chunk's tag does not answer for another key, nor for a missing one
    let chunk_tag = &before[drawn.len() + 3];
    let sibling = conditional(&server, &format!("/zarr/{id}/0/c/0/0/0/0/0"), chunk_tag);
    assert_eq!(sibling.status, 200);
    let missing = conditional(&server, &format!("/zarr/{id}/0/c/9/0/0/0/0"), chunk_tag);
    assert_eq!(missing.status, 404);
    // a ranged read carries the key's tag, and is spared by it
    let ranged = server.send(
        "range",
        server
            .request(Method::GET, &pixels[3])
            .header("Range", "bytes=0-9"),
    );
    assert_eq!(
        (ranged.status, ranged.header("etag")),
        (206, chunk_tag.as_str())
    );

    let look = json!({"rendering": {"channels": [
        {"color": "FF8000", "window": {"start": 100.0, "end": 2000.0}}, {}, {},
    ]}});
    let patched = server.send(
        "PATCH",
        server
            .request(Method::PATCH, &format!("/images/{id}"))
            .json(&look),
    );
    assert_eq!(patched.status, 200, "{}", patched.snippet());
    for (path, old) in drawn.iter().zip(&before) {
        let after = conditional(&server, path, old);
        assert_eq!(after.status, 200, "{path}: the old look's tag is stale");
        assert_ne!(after.header("etag"), old, "{path}");
        assert!(!after.body.is_empty(), "{path}");
        assert_eq!(
            conditional(&server, path, after.header("etag")).status,
            304,
            "{path}: the new tag holds"
        );
    }
    for (path, old) in pixels.iter().zip(&before[drawn.len()..]) {
        assert_eq!(
            conditional(&server, path, old).status,
            304,
            "{path}: the pixels did not change"
        );
    }

    assert_eq!(server.delete(&format!("/images/{id}")).status, 200);
    for (path, old) in drawn.iter().chain(&pixels).zip(&before) {
        let gone = conditional(&server, path, old);
        assert_eq!(gone.status, 404, "{path}: deleted, never 304");
    }
}
