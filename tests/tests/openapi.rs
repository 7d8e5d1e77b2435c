//! `infra/openapi.yaml` against the code: every route the routers serve is described, and
//! every described operation is served. Routes are found in the code, not listed here: each
//! `.route("…", get(…).post(…))` of the function crates and the local server, cross-checked
//! with the HTTP events of `template.yaml`, then each described operation is sent to the local
//! server's app and must not meet its fallback. The description itself must hold together:
//! responses with schemas, errors in the one error shape, path parameters declared.

use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

type Route = (String, String); // (METHOD, /path/{param})

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(n) => Value::from(*n),
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Boolean(flag) => Value::Bool(*flag),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let key = match key {
                        Yaml::String(text) => text.clone(),
                        Yaml::Integer(n) => n.to_string(),
                        other => panic!("unexpected key {other:?}"),
                    };
                    (key, yaml_to_json(value))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn openapi() -> Value {
    let text =
        std::fs::read_to_string(root().join("infra/openapi.yaml")).expect("infra/openapi.yaml");
    let documents = YamlLoader::load_from_str(&text).expect("infra/openapi.yaml parses");
    yaml_to_json(&documents[0])
}

const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "options", "head"];

fn described(doc: &Value) -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// The text inside the parentheses that open at `start` (just after the `(`).
fn balanced(text: &str, start: usize) -> &str {
    let mut depth = 1;
    for (offset, c) in text[start..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..start + offset];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced .route( call");
}

/// `.route("path", get(a).post(b)…)` calls of one source file.
fn routes_in_source(text: &str) -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for (at, _) in text.match_indices(".route(") {
        let arguments = balanced(text, at + ".route(".len());
        let path = arguments
            .split('"')
            .nth(1)
            .expect("a .route( call starts with its path as a literal");
        let handlers = &arguments[arguments.find(',').expect("a method router") + 1..];
        // Method routers are the calls named after a method (`get(`, `.post(`); handler
        // names such as `get_offer` are never followed by `(` inside them.
        let bytes = handlers.as_bytes();
        for method in METHODS {
            for (index, _) in handlers.match_indices(&format!("{method}(")) {
                let before = index.checked_sub(1).map(|i| bytes[i]);
                if before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')) {
                    routes.insert((method.to_uppercase(), path.to_owned()));
                }
            }
        }
    }
    routes
}

fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every route in the code: the function crates' routers and the local server's own.
fn served() -> BTreeMap<Route, String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join("functions"))
        .unwrap()
        .flatten()
    {
        rust_files(&entry.path().join("src"), &mut files);
    }
    rust_files(&root().join("infra/local/src"), &mut files);
    let mut routes = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for route in routes_in_source(&text) {
            routes.insert(route, name.clone());
        }
    }
    routes
}

/// The HTTP events of `template.yaml`: each `Method:` line followed by its `Path:`.
fn in_template() -> BTreeSet<Route> {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    let mut routes = BTreeSet::new();
    let mut method = None::<String>;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(verb) = trimmed.strip_prefix("Method: ") {
            method = Some(verb.trim().to_uppercase());
        } else if let (Some(path), Some(verb)) = (trimmed.strip_prefix("Path: "), method.take()) {
            routes.insert((verb, path.trim().to_owned()));
        }
    }
    routes
}

#[test]
fn the_route_finders_find_what_they_should() {
    let source = r#"
        Router::new()
            .route("/a/{id}", get(get_offer).put(replace_offer))
            .route(
                "/b",
                post(widget::receive).options(widget::preflight)
                    .layer(DefaultBodyLimit::max(MAX)),
            )
            .route("/c.js", get(|| async { ([("x", "y")], TEXT) }))
    "#;
    let found: Vec<Route> = routes_in_source(source).into_iter().collect();
    let expected: Vec<Route> = [
        ("GET", "/a/{id}"),
        ("GET", "/c.js"),
        ("OPTIONS", "/b"),
        ("POST", "/b"),
        ("PUT", "/a/{id}"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(found, expected);
    assert!(in_template().len() >= 20, "{:?}", in_template());
}

#[test]
fn every_served_route_is_described_and_every_description_is_served_by_the_code() {
    let doc = openapi();
    let described = described(&doc);
    let served = served();
    let template = in_template();
    let code: BTreeSet<Route> = served.keys().cloned().collect();
    let undescribed: Vec<_> = served
        .iter()
        .filter(|(route, _)| !described.contains(route))
        .map(|((method, path), file)| format!("{method} {path} (in {file})"))
        .collect();
    assert!(
        undescribed.is_empty(),
        "served but not described in infra/openapi.yaml: {undescribed:#?}"
    );
    let unserved: Vec<_> = described.difference(&code).collect();
    assert!(
        unserved.is_empty(),
        "described in infra/openapi.yaml but served nowhere in the code: {unserved:?}"
    );
    // The template sends only routes the code serves; what the code serves beyond the
    // template is the local server's own (the widget's demo page).
    let not_in_code: Vec<_> = template.difference(&code).collect();
    assert!(
        not_in_code.is_empty(),
        "in template.yaml but not in the code: {not_in_code:?}"
    );
    for route in code.difference(&template) {
        assert!(
            served[route].starts_with("infra/local"),
            "{route:?} is served by {} but has no event in template.yaml",
            served[route]
        );
    }
}

/// A concrete value for a path parameter: one the router accepts.
fn concrete(path: &str) -> String {
    let mut concrete = String::new();
    for (n, part) in path.split('{').enumerate() {
        if n == 0 {
            concrete.push_str(part);
            continue;
        }
        let (name, rest) = part.split_once('}').expect("closed parameter");
        concrete.push_str(match name {
            "network" => "generic",
            "code" => "AAAAAAAAAA",
            _ => "1",
        });
        concrete.push_str(rest);
    }
    concrete
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_described_operation_reaches_a_handler_of_the_local_server() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let engine = engine_app(&stores);
    for (method, path) in described(&openapi()) {
        let request = Request::builder()
            .method(method.as_str())
            .uri(concrete(&path))
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(&engine.app, request).await;
        let unserved =
            status == StatusCode::METHOD_NOT_ALLOWED || body["error"]["code"] == "route_not_found";
        assert!(
            !unserved,
            "{method} {path} is described but not served: {status} {body}"
        );
    }
}

#[test]
fn the_description_holds_together() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    let inner = &error["properties"]["error"];
    for field in ["code", "message", "field"] {
        assert!(
            inner["properties"][field].is_object(),
            "Error lacks {field}"
        );
    }
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let declared_in_path: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .map(|part| part.split_once('}').unwrap().0)
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            operations += 1;
            let parameters: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(parameters, declared_in_path, "{name}: path parameters");
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{name}: unknown scheme {scheme}"
                    );
                }
            }
            let responses = operation["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{name}: no responses");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string(),
                    "{name} {status}: description"
                );
                let content = response["content"].as_object();
                // The dashboard's pages refuse with an HTML page, the API with the JSON error.
                let html_page = operation["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.iter().any(|tag| tag == "dashboard"))
                    && content.is_some_and(|content| content.contains_key("text/html"));
                if (status.starts_with('4') || status.starts_with('5')) && !html_page {
                    let schema = &content.unwrap_or_else(|| panic!("{name} {status}: no body"))["application/json"]
                        ["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Error",
                        "{name} {status}: errors have the error shape"
                    );
                }
                for (media, body) in content.into_iter().flatten() {
                    assert!(
                        body["schema"].is_object(),
                        "{name} {status} {media}: no schema"
                    );
                }
            }
            if !["get", "delete", "options"].contains(&method.as_str())
                && operation["requestBody"].is_object()
            {
                assert!(
                    operation["requestBody"]["content"].is_object(),
                    "{name}: request body without content"
                );
            }
        }
    }
    assert!(operations >= 30, "only {operations} operations described");
}
