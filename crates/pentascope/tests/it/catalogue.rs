//! The catalogue over HTTP against the real binary: names, tags and
//! annotations given at upload and changed with PATCH, datasets, paged
//! search with every filter, access control inside searches and counts,
//! the 400s, and paging while other clients upload and delete.

use std::collections::{BTreeSet, HashMap};

use reqwest::blocking::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{json, Value};

use crate::access::Lab;
use crate::util::tiff::plain_tiff;
use crate::util::{image_id_of, Resp, Server};

/// A tiny TIFF, different per `seed`.
fn tiny(seed: u8) -> Vec<u8> {
    plain_tiff(8, 6, 8, 2, move |p, i| {
        (i as u8).wrapping_mul(7) ^ seed ^ p as u8
    })
}

/// Uploads a tiny image with catalogue fields (sent before the file).
fn upload(
    server: &Server,
    key: Option<&str>,
    file: &str,
    seed: u8,
    fields: &[(&str, &str)],
) -> String {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let part = Part::bytes(tiny(seed)).file_name(file.to_string());
    form = form.part("file", part);
    let resp = match key {
        Some(key) => server.send(
            &format!("upload {file}"),
            server
                .request(Method::POST, "/upload")
                .bearer_auth(key)
                .multipart(form),
        ),
        // the suite's own client (with its key when the suite requires one)
        None => server.post_form("/upload", file, form),
    };
    image_id_of(&resp).unwrap_or_else(|e| panic!("{e}\n{}", server.logs()))
}

/// The ids of a listing, sorted, with its count.
fn found(resp: Resp) -> (u64, Vec<String>) {
    let body = resp.ok_json().unwrap_or_else(|e| panic!("{e}"));
    let mut ids: Vec<String> = body["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    (body["count"].as_u64().unwrap(), ids)
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn a_lab_names_tags_annotates_groups_and_finds_its_images() {
    let lab = Lab::start(&[]);
    let (bob, carol, ada) = (
        lab.key("bob", "write", &[]),
        lab.key("carol", "write", &[]),
        lab.key("ada", "admin", &[]),
    );
    let server = &lab.server;
    let brain = upload(
        server,
        Some(&bob),
        "b1.tif",
        1,
        &[
            ("name", "Mouse brain, slice 3"),
            ("description", "Confocal\nstack"),
            ("tag", "DAPI"),
            ("tag", "brain"),
            ("annotation", "Stain=DAPI"),
            ("annotation", "Mouse=M12"),
            ("annotation", "Mouse=M13"),
            ("dataset", "Cortex study"),
        ],
    );
    let liver = upload(
        server,
        Some(&bob),
        "liver_β.tif",
        2,
        &[
            ("tag", "DAPI"),
            ("annotation", "Stain=GFP"),
            ("dataset", "Cortex study"),
        ],
    );
    let secret = upload(
        server,
        Some(&carol),
        "zygote.tif",
        3,
        &[
            ("name", "Xenopus zygote"),
            ("tag", "embryo"),
            ("annotation", "Mouse=M12"),
        ],
    );
    let get = |path: &str, key: &str| lab.get(path, Some(key));

    // the entry as given, in /images/{id} and /metadata
    let meta = get(&format!("/images/{brain}"), &bob).ok_json().unwrap();
    assert_eq!(meta["name"], "Mouse brain, slice 3");
    assert_eq!(meta["description"], "Confocal\nstack");
    assert_eq!(meta["tags"], json!(["DAPI", "brain"]));
    assert_eq!(
        meta["annotations"],
        json!([["Stain", "DAPI"], ["Mouse", "M12"], ["Mouse", "M13"]])
    );
    let dataset = meta["datasets"][0]["dataset_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(meta["datasets"][0]["name"], "Cortex study");
    let meta = get(&format!("/metadata?image_id={liver}"), &bob)
        .ok_json()
        .unwrap();
    assert_eq!(
        meta["name"], "liver_β.tif",
        "the name defaults to the file's"
    );

    // every filter, alone and combined (AND)
    let search = |query: &str, key: &str| found(get(&format!("/images?{query}"), key));
    assert_eq!(search("q=mous", &bob), (1, vec![brain.clone()]));
    assert_eq!(search("q=CONFOCAL+slice", &bob), (1, vec![brain.clone()]));
    assert_eq!(
        search(&format!("q={}", enc("β")), &bob),
        (1, vec![liver.clone()])
    );
    assert_eq!(
        search("q=cortex", &bob).1,
        sorted(&[&brain, &liver]),
        "dataset names are words"
    );
    assert_eq!(search("tag=DAPI", &bob).1, sorted(&[&brain, &liver]));
    assert_eq!(search("tag=DAPI&tag=brain", &bob).1, vec![brain.clone()]);
    assert_eq!(search("tag=dapi", &bob).0, 0, "tags match exactly");
    assert_eq!(
        search("annotation=Stain%3DGFP", &bob).1,
        vec![liver.clone()]
    );
    assert_eq!(
        search("annotation=Mouse%3DM13&tag=DAPI", &bob).1,
        vec![brain.clone()]
    );
    assert_eq!(
        search(&format!("dataset={dataset}"), &bob).1,
        sorted(&[&brain, &liver])
    );
    assert_eq!(
        search("owner=bob&dtype=uint8&kind=upload&flavour=plain", &bob).0,
        2
    );
    assert_eq!(search("kind=labels", &bob).0, 0);
    assert_eq!(
        search(
            "created_after=2000-01-01&created_before=2999-01-01T00:00:00Z",
            &bob
        )
        .0,
        2
    );
    assert_eq!(search("created_after=2999-01-01", &bob).0, 0);

    // another user's private image is never found, listed or counted
    for query in [
        "q=xenopus",
        "q=zyg",
        "annotation=Mouse%3DM12",
        "tag=embryo",
        "owner=carol",
        "",
    ] {
        let (count, ids) = search(query, &bob);
        assert!(
            !ids.contains(&secret) && count == ids.len() as u64,
            "{query}: {ids:?}"
        );
    }
    assert_eq!(
        search("annotation=Mouse%3DM12", &bob).1,
        vec![brain.clone()]
    );
    assert_eq!(
        search("annotation=Mouse%3DM12", &ada).1,
        sorted(&[&brain, &secret])
    );
    let tags = get("/tags", &bob).ok_json().unwrap();
    assert_eq!(
        tags["tags"],
        json!([{"tag": "DAPI", "images": 2}, {"tag": "brain", "images": 1}])
    );
    assert_eq!(
        get("/tags?prefix=e", &carol).ok_json().unwrap()["tags"],
        json!([{"tag": "embryo", "images": 1}])
    );

    // PATCH: owner only; add and remove tags, replace annotations
    let patch = |id: &str, key: &str, body: Value| {
        lab.call(
            Method::PATCH,
            &format!("/images/{id}"),
            Some(key),
            Some(&body),
        )
    };
    let changed = patch(
        &brain,
        &bob,
        json!({"add_tags": ["DAPI", "new"], "remove_tags": ["brain"],
               "annotations": {"Objective": "63x"}, "description": "Edited"}),
    )
    .ok_json()
    .unwrap();
    assert_eq!(changed["tags"], json!(["DAPI", "new"]));
    assert_eq!(changed["annotations"], json!([["Objective", "63x"]]));
    assert_eq!(search("q=edited+63x", &bob).1, vec![brain.clone()]);
    assert_eq!(search("q=confocal", &bob).0, 0, "the old words are gone");
    assert_eq!(patch(&secret, &bob, json!({"name": "mine"})).status, 404);
    lab.call(
        Method::PATCH,
        &format!("/images/{liver}"),
        Some(&bob),
        Some(&json!({"public": true})),
    )
    .ok_json()
    .unwrap();
    assert_eq!(patch(&liver, &carol, json!({"tags": ["x"]})).status, 403);

    // limits and control characters: 400 naming the limit
    let refused = |body: Value, needle: &str| {
        let resp = patch(&brain, &bob, body.clone());
        let message = resp.error(&[400]).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(message.contains(needle), "{body}: {message}");
    };
    refused(json!({"tags": ["x".repeat(129)]}), "--max-tag-chars");
    refused(
        json!({"tags": (0..257).map(|i| i.to_string()).collect::<Vec<_>>()}),
        "256",
    );
    refused(json!({"annotations": [["k", "v".repeat(4097)]]}), "4096");
    refused(json!({"annotations": [["", "v"]]}), "empty");
    refused(json!({"name": "a\u{0}b"}), "control character");
    refused(json!({"annotations": {"k": 3}}), "annotations are");
    assert_eq!(patch(&brain, &bob, json!({"colour": 1})).status, 400);

    // datasets: visibility, counts of what the caller may read, links
    let post =
        |path: &str, key: &str, body: Value| lab.call(Method::POST, path, Some(key), Some(&body));
    let theirs = post("/datasets", &carol, json!({"name": "Carol's"}));
    assert_eq!(theirs.status, 201, "{}", theirs.snippet());
    let theirs = theirs.json().unwrap();
    let theirs = theirs["dataset_id"].as_str().unwrap().to_string();
    assert_eq!(
        get(&format!("/datasets/{theirs}"), &bob).status,
        404,
        "private"
    );
    let link = |dataset: &str, image: &str, key: &str| {
        lab.call(
            Method::PUT,
            &format!("/datasets/{dataset}/images/{image}"),
            Some(key),
            None,
        )
    };
    assert_eq!(
        link(&theirs, &liver, &carol).ok_json().unwrap()["added"],
        true,
        "a public image"
    );
    assert_eq!(
        link(&theirs, &brain, &carol).status,
        404,
        "bob's private image"
    );
    assert_eq!(
        link(&dataset, &secret, &carol).status,
        404,
        "bob's private dataset"
    );
    assert_eq!(
        link(&dataset, &secret, &ada).ok_json().unwrap()["added"],
        true
    );
    let count = |id: &str, key: &str| {
        get(&format!("/datasets/{id}"), key).ok_json().unwrap()["image_count"].clone()
    };
    assert_eq!(
        (count(&dataset, &bob), count(&dataset, &ada)),
        (json!(2), json!(3))
    );
    assert_eq!(search(&format!("dataset={dataset}"), &bob).0, 2);
    lab.call(
        Method::PATCH,
        &format!("/datasets/{dataset}"),
        Some(&bob),
        Some(&json!({"public": true, "name": "Renamed cortex"})),
    )
    .ok_json()
    .unwrap();
    assert_eq!(
        count(&dataset, &carol),
        json!(2),
        "carol sees liver and her own image"
    );
    let listed = get("/datasets?q=renam", &carol).ok_json().unwrap();
    assert_eq!(
        (
            listed["count"].clone(),
            listed["datasets"][0]["dataset_id"].clone()
        ),
        (json!(1), json!(dataset))
    );
    assert_eq!(
        lab.call(
            Method::DELETE,
            &format!("/datasets/{dataset}"),
            Some(&carol),
            None
        )
        .status,
        403
    );
    lab.call(
        Method::DELETE,
        &format!("/datasets/{dataset}/images/{liver}"),
        Some(&bob),
        None,
    )
    .ok_json()
    .unwrap();
    assert_eq!(count(&dataset, &bob), json!(1));
    lab.call(
        Method::DELETE,
        &format!("/datasets/{dataset}"),
        Some(&bob),
        None,
    )
    .ok_json()
    .unwrap();
    assert_eq!(
        get(&format!("/images/{brain}"), &bob).status,
        200,
        "images stay"
    );
    assert_eq!(get(&format!("/datasets/{dataset}"), &bob).status, 404);

    // bad requests are 400s that name the parameter, never 500s
    let first = get("/images?limit=1&sort=name", &bob).ok_json().unwrap();
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] ^= 1;
    let tampered = String::from_utf8(tampered).unwrap();
    for (query, needle) in [
        ("limit=0".to_string(), "limit"),
        ("limit=1001".to_string(), "limit"),
        ("limit=ten".to_string(), "limit"),
        ("sort=colour".to_string(), "sort"),
        ("kind=movie".to_string(), "kind"),
        ("dtype=uint7".to_string(), "dtype"),
        ("dataset=7".to_string(), "dataset"),
        ("created_after=yesterday".to_string(), "created_after"),
        (
            "created_before=2026-12-06T10:00:00%2B02:00".to_string(),
            "created_before",
        ),
        (format!("q={}", "a".repeat(1025)), "q"),
        ("color=red".to_string(), "unknown query parameter"),
        ("limit=1&limit=2".to_string(), "twice"),
        (format!("sort=name&limit=1&cursor={tampered}"), "cursor"),
        ("sort=name&limit=1&cursor=garbage".to_string(), "cursor"),
        (
            format!("sort=-name&limit=1&cursor={}", enc(&cursor)),
            "another query",
        ),
        (
            format!("sort=name&limit=1&q=x&cursor={}", enc(&cursor)),
            "another query",
        ),
        ("annotation=novalue".to_string(), "key=value"),
        ("tag=a%00b".to_string(), "control"),
    ] {
        let resp = get(&format!("/images?{query}"), &bob);
        let message = resp
            .error(&[400])
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert!(message.contains(needle), "{query}: {message}");
    }
    let next = get(
        &format!("/images?limit=1&sort=name&cursor={}", enc(&cursor)),
        &bob,
    );
    assert_eq!(
        next.ok_json().unwrap()["images"].as_array().unwrap().len(),
        1
    );
    // search text is data: syntax of SQL, FTS5 and tsquery matches literally or is refused
    let long = "é😀".repeat(1000);
    for q in [
        "\"",
        "*",
        "NEAR",
        "--",
        "%",
        "\\",
        "a\u{0}b",
        "'); DROP TABLE images; --",
        "brain OR x",
        "a & !b:*",
        "^",
        long.as_str(),
    ] {
        let resp = get(&format!("/images?q={}", enc(q)), &bob);
        assert!(
            [200, 400].contains(&resp.status),
            "q={q:?}: {} {}",
            resp.status,
            resp.snippet()
        );
        let resp = get(&format!("/datasets?q={}", enc(q)), &bob);
        assert!(
            [200, 400].contains(&resp.status),
            "datasets q={q:?}: {}",
            resp.status
        );
        let resp = get(&format!("/tags?prefix={}", enc(q)), &bob);
        assert!(
            [200, 400].contains(&resp.status),
            "tags prefix={q:?}: {}",
            resp.status
        );
    }
    // a field after the file is refused and stores nothing
    let form = Form::new()
        .part("file", Part::bytes(tiny(9)).file_name("late.tif"))
        .text("tag", "late");
    let resp = server.send(
        "upload with a late tag",
        server
            .request(Method::POST, "/upload")
            .bearer_auth(&bob)
            .multipart(form),
    );
    let message = resp.error(&[400]).unwrap();
    assert!(message.contains("before the file"), "{message}");
    assert_eq!(search("q=late", &ada).0, 0);
}

/// Paging through every page while others upload and delete never repeats
/// or skips an image that existed throughout, in every sort order.
#[test]
fn paging_under_concurrent_writes_never_repeats_or_skips() {
    let server = Server::start();
    let initial: Vec<String> = (0..24)
        .map(|i| {
            upload(
                &server,
                None,
                &format!("s{:02}.tif", (i * 7) % 24),
                i as u8,
                &[],
            )
        })
        .collect();
    let (doomed, kept) = initial.split_at(6);
    for sort in ["-created", "name", "-size"] {
        let writer = std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                let mut added = Vec::new();
                for (i, id) in doomed.iter().enumerate() {
                    if sort == "-created" {
                        server.delete(&format!("/images/{id}")).ok_json().unwrap();
                    }
                    added.push(upload(
                        &server,
                        None,
                        &format!("new{i}.tif"),
                        100 + i as u8,
                        &[],
                    ));
                }
                added
            });
            let mut seen: HashMap<String, usize> = HashMap::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/images?sort={sort}&limit=3&cursor={}", enc(c)),
                    None => format!("/images?sort={sort}&limit=3"),
                };
                let page = server.get(&path).ok_json().unwrap();
                for image in page["images"].as_array().unwrap() {
                    *seen
                        .entry(image["image_id"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
            (writer.join().unwrap(), seen)
        });
        let (added, seen) = writer;
        for id in kept {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "{sort}: {id} seen {:?} times",
                seen.get(id)
            );
        }
        assert!(seen.values().all(|&n| n == 1), "{sort}: repeated {seen:?}");
        for id in added {
            server.delete(&format!("/images/{id}")).ok_json().unwrap();
        }
    }
    let listed = server.get("/images?limit=1000").ok_json().unwrap();
    let ids: BTreeSet<&str> = listed["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), kept.len());
}

/// Tags, annotations and the description travel in the OME-TIFF download
/// (`TagAnnotation`, `MapAnnotation`, `Description`) and come back when the
/// file is uploaded again; fields given with the new upload are added.
#[test]
fn annotations_survive_the_ome_tiff_round_trip() {
    let server = Server::start();
    let id = upload(
        &server,
        None,
        "round.tif",
        5,
        &[
            ("description", "Fixed <4% PFA> & stained"),
            ("tag", "DAPI"),
            ("tag", "ünï ✓"),
            ("annotation", "Stain=DAPI"),
            ("annotation", "Mouse=M12"),
            ("annotation", "Mouse=M13 & <x>"),
        ],
    );
    let original = server.metadata(&id);
    let download = server.get(&format!("/images/{id}/download"));
    assert_eq!(download.status, 200);
    let again = server.post_form(
        "/upload",
        "the download again",
        Form::new().text("tag", "second").part(
            "file",
            Part::bytes(download.body.clone()).file_name("round.ome.tif"),
        ),
    );
    let again = image_id_of(&again).unwrap();
    let meta = server.metadata(&again);
    assert_eq!(meta["description"], original["description"]);
    assert_eq!(meta["annotations"], original["annotations"]);
    assert_eq!(meta["tags"], json!(["DAPI", "ünï ✓", "second"]));
    assert_eq!(server.samples_sha256(&again), server.samples_sha256(&id));
}
