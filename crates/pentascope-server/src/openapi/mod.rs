//! The OpenAPI 3.1 document of `GET /openapi.json`, generated: paths,
//! methods and query parameters from the route table
//! ([`crate::router::routes`]), request and response schemas from the Rust
//! types the handlers read and answer (`schemars`), and the prose of each
//! operation from [`operations`]. Only the front matter (`front.json`: title,
//! tags), the shared responses, headers and parameters and the schemas of
//! the request bodies that are not read into a type of their own
//! (`components.json`) are written by hand.

pub(crate) mod operations;

use std::sync::LazyLock;

use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::error::ErrorBody;
use crate::router::{routes, Route};

/// Writes a type's schema into the generator's definitions and answers a
/// reference to it.
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

/// What the document says of one route beyond its method, path and query
/// parameter names: its prose, the documentation of each parameter, and
/// its request body and answers with the types they are made of.
pub struct Operation {
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    public: bool,
    params: Vec<Value>,
    body: Option<(Option<SchemaOf>, Value)>,
    answers: Vec<(u16, Answer)>,
}

enum Answer {
    /// One of `components/responses`.
    Shared(&'static str),
    /// A response object; with a type, its `application/json` schema.
    Object(Option<SchemaOf>, Value),
}

impl Operation {
    /// An operation with its `operationId`, tag and summary.
    pub fn new(id: &'static str, tag: &'static str, summary: &'static str) -> Operation {
        Operation {
            id,
            tag,
            summary,
            description: None,
            public: false,
            params: Vec::new(),
            body: None,
            answers: Vec::new(),
        }
    }

    /// Its longer description (Markdown).
    pub fn description(mut self, text: &'static str) -> Operation {
        self.description = Some(text);
        self
    }

    /// Callable without credentials (`security: []`).
    pub fn public(mut self) -> Operation {
        self.public = true;
        self
    }

    /// A parameter object: one of the route's query parameters, a path
    /// parameter or a header.
    pub fn param(mut self, parameter: Value) -> Operation {
        self.params.push(parameter);
        self
    }

    /// A JSON request body of type `T` (as it is read); `object` is the
    /// rest of the request body object (`required`, examples).
    pub fn body<T: JsonSchema>(mut self, object: Value) -> Operation {
        self.body = Some((Some(|g| g.subschema_for::<T>()), object));
        self
    }

    /// A request body that is not JSON (multipart, bytes).
    pub fn raw_body(mut self, object: Value) -> Operation {
        self.body = Some((None, object));
        self
    }

    /// An answer whose JSON body is a `T` (as it is written); `object` is
    /// the rest of the response object (description, headers, other
    /// content types).
    pub fn json<T: JsonSchema>(mut self, status: u16, object: Value) -> Operation {
        let schema: SchemaOf = |g| g.subschema_for::<T>();
        self.answers
            .push((status, Answer::Object(Some(schema), object)));
        self
    }

    /// An answer with no JSON body (images, files, pages, no content).
    pub fn answer(mut self, status: u16, object: Value) -> Operation {
        self.answers.push((status, Answer::Object(None, object)));
        self
    }

    /// An error answer (`{"error": …}`) and when it is given.
    pub fn error(self, status: u16, description: &str) -> Operation {
        self.json::<ErrorBody>(status, json!({ "description": description }))
    }

    /// One of the shared answers of `components/responses`.
    pub fn refer(mut self, status: u16, name: &'static str) -> Operation {
        self.answers.push((status, Answer::Shared(name)));
        self
    }

    /// The shared answers of `components/responses` that these statuses
    /// usually mean (400 a bad request, 401 no key, 403 a key that may
    /// not, 404 no such image, 414 a URI too long, 500 a fault, 503 an
    /// outage, 304 not modified).
    pub fn shared(self, statuses: &[u16]) -> Operation {
        statuses.iter().fold(self, |op, &status| {
            let name = match status {
                304 => "NotModified",
                400 => "BadRequest",
                401 => "Unauthenticated",
                403 => "Forbidden",
                404 => "NotFound",
                414 => "UriTooLong",
                500 => "InternalError",
                503 => "Unavailable",
                other => panic!("no shared answer for {other}"),
            };
            op.refer(status, name)
        })
    }
}

/// The document, generated once.
pub fn document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| generate(&routes(1)));
    &DOCUMENT
}

fn settings(contract: Contract) -> SchemaSettings {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas/".into();
    settings.meta_schema = None;
    settings.contract = contract;
    settings
}

/// The document for `routes`. Panics if a route has no operation, or a
/// query parameter of a route is not documented: tests generate it.
pub(crate) fn generate(routes: &[Route]) -> Value {
    let mut front: Value =
        serde_json::from_str(include_str!("front.json")).expect("front.json is JSON");
    let mut components: Value =
        serde_json::from_str(include_str!("components.json")).expect("components.json is JSON");
    // answers are described as they are written, bodies as they are read
    let mut answers = SchemaGenerator::new(settings(Contract::Serialize));
    let mut bodies = SchemaGenerator::new(settings(Contract::Deserialize));
    // what the shared answers and parameters of components.json refer to
    answers.subschema_for::<ErrorBody>();
    answers.subschema_for::<pentascope_store::ImageId>();
    let mut paths = Map::new();
    for route in routes {
        let op = (route.doc)();
        let path = route.path.replace("{*", "{");
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object");
        let method = route.method.as_str().to_ascii_lowercase();
        entry.insert(
            method,
            operation(route, &path, op, &mut answers, &mut bodies),
        );
    }
    // the few schemas of request values not read into a type of their own
    let mut schemas = match components["schemas"].take() {
        Value::Object(written) => written,
        _ => Map::new(),
    };
    schemas.extend(answers.take_definitions(true));
    for (name, schema) in bodies.take_definitions(true) {
        if let Some(written) = schemas.get(&name) {
            assert_eq!(
                *written, schema,
                "{name} is read and written with different schemas: give the request its own type"
            );
        }
        schemas.insert(name, schema);
    }
    let mut schemas = Value::Object(schemas);
    unwrap_descriptions(&mut schemas);
    components["schemas"] = schemas;
    front["paths"] = Value::Object(paths);
    front["components"] = components;
    front
}

fn operation(
    route: &Route,
    path: &str,
    op: Operation,
    answers: &mut SchemaGenerator,
    bodies: &mut SchemaGenerator,
) -> Value {
    let name_of = |p: &Value| -> Option<(String, String)> {
        let p = match p["$ref"].as_str() {
            Some(r) => match r.rsplit('/').next()? {
                "ImageIdQuery" => return Some(("query".into(), "image_id".into())),
                "IfNoneMatch" => return Some(("header".into(), "If-None-Match".into())),
                other => panic!("unknown shared parameter {other}"),
            },
            None => p,
        };
        Some((
            p["in"].as_str()?.to_string(),
            p["name"].as_str()?.to_string(),
        ))
    };
    let documented = |place: &str, name: &str| {
        op.params
            .iter()
            .find(|p| name_of(p).is_some_and(|(i, n)| i == place && n == name))
            .unwrap_or_else(|| {
                panic!(
                    "{} {}: the {place} parameter {name} is not documented",
                    route.method, route.path
                )
            })
            .clone()
    };
    let mut params: Vec<Value> = path_names(path)
        .map(|name| documented("path", name))
        .collect();
    params.extend(route.query.iter().map(|name| documented("query", name)));
    for p in &op.params {
        match name_of(p) {
            Some((place, _)) if place == "header" || place == "cookie" => params.push(p.clone()),
            Some((place, name)) if place == "query" => assert!(
                route.query.contains(&name.as_str()),
                "{} {}: documents the query parameter {name}, which the route does not take",
                route.method,
                route.path
            ),
            _ => {}
        }
    }
    let mut doc = json!({
        "tags": [op.tag],
        "operationId": op.id,
        "summary": op.summary,
    });
    if let Some(text) = op.description {
        doc["description"] = json!(text);
    }
    if op.public {
        doc["security"] = json!([]);
    }
    if !params.is_empty() {
        doc["parameters"] = Value::Array(params);
    }
    if let Some((schema, mut object)) = op.body {
        if let Some(schema) = schema {
            object["content"]["application/json"]["schema"] = schema(bodies).to_value();
        }
        doc["requestBody"] = object;
    }
    let mut responses = Map::new();
    for (status, answer) in op.answers {
        let object = match answer {
            Answer::Shared(name) => json!({ "$ref": format!("#/components/responses/{name}") }),
            Answer::Object(schema, mut object) => {
                if let Some(schema) = schema {
                    object["content"]["application/json"]["schema"] = schema(answers).to_value();
                }
                object
            }
        };
        responses.insert(status.to_string(), object);
    }
    doc["responses"] = Value::Object(responses);
    doc
}

/// Makes the descriptions taken from doc comments read as prose: lines
/// joined within a paragraph (a line break there is the source's
/// wrapping) and rustdoc's links to items (`` [`name`] ``) written as
/// code.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get_mut("description") {
                *text = text
                    .split("\n\n")
                    .map(|paragraph| without_item_links(&paragraph.replace('\n', " ")))
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            map.values_mut().for_each(unwrap_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// `text` with each `` [`name`] `` that is not a Markdown link (no `(`
/// after it) written `` `name` ``.
fn without_item_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        let after = &rest[start + 1..];
        let link = after
            .find("`]")
            .filter(|&end| !after[end + 2..].starts_with('('));
        match link {
            Some(end) => {
                out.push_str(&rest[..start]);
                out.push_str(&after[..end + 1]);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The names of a path template's parameters (`{id}`, `{*key}`).
fn path_names(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| {
        segment
            .strip_prefix('{')?
            .strip_suffix('}')
            .map(|name| name.trim_start_matches('*'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` of `value` (the document or a part of it).
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// The document has every route with each of its query parameters,
    /// and every reference in it names something it defines.
    #[test]
    fn every_route_is_documented_and_every_reference_resolves() {
        let routes = routes(1);
        let doc = generate(&routes);
        for route in &routes {
            let path = route.path.replace("{*", "{");
            let op = &doc["paths"][&path][route.method.as_str().to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{} {} is not documented",
                route.method,
                route.path
            );
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| match p["$ref"].as_str() {
                    Some(r) => {
                        doc["components"]["parameters"][r.rsplit('/').next()?]["name"].as_str()
                    }
                    None => p["name"].as_str(),
                })
                .collect();
            for name in route
                .query
                .iter()
                .chain(path_names(route.path).collect::<Vec<_>>().iter())
            {
                assert!(
                    names.contains(name),
                    "{} {}: parameter {name} is not documented",
                    route.method,
                    route.path
                );
            }
        }
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 100, "only {} references", found.len());
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} names nothing");
        }
    }

    #[test]
    fn item_links_of_doc_comments_read_as_code() {
        assert_eq!(
            without_item_links("the units [`unit_name`] knows, [`a`](http://x) and [`b"),
            "the units `unit_name` knows, [`a`](http://x) and [`b"
        );
    }

    /// Answers are described from their types: what a handler writes is
    /// what the schema lists.
    #[test]
    fn answer_schemas_come_from_the_types() {
        let doc = generate(&routes(1));
        let metadata = &doc["components"]["schemas"]["Metadata"];
        for key in [
            "image_id",
            "T",
            "Channels",
            "levels",
            "rendering",
            "siblings",
        ] {
            assert!(
                metadata["properties"][key].is_object(),
                "Metadata lacks {key}"
            );
        }
        let ok = &doc["paths"]["/metadata"]["get"]["responses"]["200"];
        assert_eq!(
            ok["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Metadata"
        );
        assert_eq!(
            doc["components"]["schemas"]["Error"]["required"],
            json!(["error"])
        );
    }
}
