//! `template.yaml` against the code, both ways: every HTTP route the template sends to a
//! function is served by that function's router, every route a function's sources give its
//! router is in the template, and every function's binary is a crate of the workspace.

use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Function logical id → (binary, [(method, path)]), read from the template's plain layout.
fn template_functions() -> BTreeMap<String, (String, Vec<(String, String)>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    let mut functions = BTreeMap::new();
    let (mut current, mut method) = (None::<String>, None::<String>);
    let mut last_resource = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if line.starts_with("  ") && !line.starts_with("   ") && trimmed.ends_with(':') {
            last_resource = trimmed.trim_end_matches(':').to_owned();
            current = None;
        } else if trimmed == "Type: AWS::Serverless::Function" {
            current = Some(last_resource.clone());
            functions.insert(last_resource.clone(), (String::new(), Vec::new()));
        } else if let Some(function) = &current {
            let entry = functions.get_mut(function).unwrap();
            if let Some(binary) = trimmed.strip_prefix("Binary: ") {
                entry.0 = binary.to_owned();
            } else if let Some(verb) = trimmed.strip_prefix("Method: ") {
                method = Some(verb.to_owned());
            } else if let (Some(path), Some(verb)) = (trimmed.strip_prefix("Path: "), method.take())
            {
                entry.1.push((verb, path.to_owned()));
            }
        }
    }
    functions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_route_is_served_by_its_functions_router() {
    let (stores, _guard) = fresh_stores(Backend::Embedded).await.unwrap();
    let functions = template_functions();
    let routers = BTreeMap::from([
        ("webhook", webhook_app(stores.contacts.clone())),
        ("rules", rules_app(&stores)),
        ("clicks", clicks_app(&stores)),
        ("postback", postback_app(&stores)),
    ]);
    let mut checked = 0;
    for (function, (binary, routes)) in &functions {
        assert!(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../functions/{binary}/Cargo.toml"))
                .exists(),
            "{function}'s binary {binary:?} has no crate under functions/"
        );
        for (method, path) in routes {
            let router = routers
                .get(binary.as_str())
                .unwrap_or_else(|| panic!("{function} has HTTP routes but no router here"));
            let concrete = path
                .replace("{instance_id}", "1")
                .replace("{contact_id}", "2")
                .replace("{rule_id}", "3")
                .replace("{job_id}", "4")
                .replace("{code}", "5")
                .replace("{network}", "generic")
                .replace("{offer_id}", "6");
            let request = Request::builder()
                .method(method.as_str())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let (status, body) = call(router, request).await;
            // A 404 from a handler names what it did not find; only the fallback says "route".
            let unserved = status == StatusCode::METHOD_NOT_ALLOWED
                || body["error"]["code"] == "route_not_found";
            assert!(
                !unserved,
                "{function}: {method} {path} is in the template but not served ({status} {body})"
            );
            checked += 1;
        }
    }
    assert!(functions.contains_key("MatcherFunction"), "{functions:?}");
    assert!(checked >= 23, "only {checked} routes found in the template");
}

/// Every `.route("path", get(..).post(..))` written in a function crate's sources: the routes
/// its router serves, read from the code rather than from the template.
fn routes_in_source(binary: &str) -> Vec<(String, String)> {
    let folder =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../functions/{binary}/src"));
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(folder).expect("function sources") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments, up to its closing parenthesis.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find_map(|(index, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    (depth == 0).then_some(index)
                })
                .expect("balanced .route(…)");
            let call = &rest[..end];
            let path = call.split('"').nth(1).expect("a path literal").to_owned();
            let methods = call[call.find(',').expect("a method router")..].to_owned();
            for method in ["get", "post", "put", "delete", "patch", "options"] {
                let called = methods
                    .match_indices(&format!("{method}("))
                    .any(|(index, _)| {
                        index == 0
                            || !methods.as_bytes()[index - 1].is_ascii_alphanumeric()
                                && methods.as_bytes()[index - 1] != b'_'
                    });
                if called {
                    routes.push((method.to_ascii_uppercase(), path.clone()));
                }
            }
            rest = &rest[end..];
        }
    }
    routes
}

#[test]
fn every_route_a_function_serves_is_in_the_template() {
    let functions = template_functions();
    let mut checked = 0;
    for (function, (binary, template_routes)) in &functions {
        for route in routes_in_source(binary) {
            assert!(
                template_routes.contains(&route),
                "{function} ({binary}) serves {} {} but the template does not route it",
                route.0,
                route.1
            );
            checked += 1;
        }
    }
    assert!(checked >= 29, "only {checked} routes found in the sources");
}
