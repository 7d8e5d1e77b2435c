//! `template.yaml` against the code, both ways: every HTTP route the template sends to a
//! function is served by that function's router, every route a function's sources give its
//! router is in the template, and every function's binary is a crate of the workspace.

use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use shared::config::SecretName;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use yaml_rust2::{Yaml, YamlLoader};

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
    let routers = BTreeMap::from_iter(function_routers(&stores));
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
    assert!(checked >= 31, "only {checked} routes found in the template");
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
    // A binary may serve several functions: together they route all of its routes.
    let mut routed: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (binary, routes) in template_functions().into_values() {
        routed.entry(binary).or_default().extend(routes);
    }
    let mut checked = 0;
    for (binary, template_routes) in &routed {
        for route in routes_in_source(binary) {
            assert!(
                template_routes.contains(&route),
                "{binary} serves {} {} but the template routes it to none of its functions",
                route.0,
                route.1
            );
            checked += 1;
        }
    }
    assert!(checked >= 31, "only {checked} routes found in the sources");
}

/// The template as YAML; CloudFormation's short tags (`!Ref X`) read as their plain values.
fn template_yaml() -> Yaml {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    YamlLoader::load_from_str(&text)
        .expect("template.yaml parses")
        .remove(0)
}

/// A parameter's default, as a number.
fn default_of(template: &Yaml, parameter: &str) -> i64 {
    let parameter = &template["Parameters"][parameter];
    assert!(!parameter.is_badvalue(), "no parameter {parameter:?}");
    parameter["Default"]
        .as_i64()
        .unwrap_or_else(|| panic!("{parameter:?} has no number default"))
}

#[test]
fn every_route_is_throttled_by_parameters_public_routes_below_meta_and_admin_lowest() {
    let template = template_yaml();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    let settings = api["RouteSettings"]
        .as_hash()
        .expect("HttpApi RouteSettings");
    let routes: Vec<String> = template_functions()
        .values()
        .flat_map(|(_, routes)| {
            routes
                .iter()
                .map(|(method, path)| format!("{method} {path}"))
        })
        .collect();
    let mut rate_of = BTreeMap::new();
    for route in &routes {
        let setting = &settings
            .get(&Yaml::String(route.clone()))
            .unwrap_or_else(|| panic!("{route} has no RouteSettings (no throttle)"));
        let rate = setting["ThrottlingRateLimit"]
            .as_str()
            .expect("a rate parameter");
        let burst = setting["ThrottlingBurstLimit"]
            .as_str()
            .expect("a burst parameter");
        assert!(
            default_of(&template, rate) <= default_of(&template, burst),
            "{route}"
        );
        assert_eq!(
            setting["DetailedMetricsEnabled"].as_bool(),
            Some(true),
            "{route}"
        );
        rate_of.insert(route.clone(), default_of(&template, rate));
    }
    // A setting for a route that does not exist fails the deployment.
    for key in settings.keys() {
        let key = key.as_str().unwrap();
        assert!(
            routes.iter().any(|route| route == key),
            "RouteSettings names no route: {key}"
        );
    }
    let default = &api["DefaultRouteSettings"];
    assert_eq!(
        default["ThrottlingRateLimit"].as_str(),
        Some("AdminRateLimit")
    );
    let meta = rate_of["POST /webhooks/meta"];
    for (route, rate) in &rate_of {
        let public = ["/webhooks/widget", "/widget.js", "/c/", "/postbacks/"]
            .iter()
            .any(|prefix| route.split(' ').nth(1).unwrap().starts_with(prefix));
        if public {
            assert!(*rate < meta, "{route} may outpace Meta's webhook");
        }
        let admin = route.contains("/instances/")
            || route.contains(" /offers")
            || route.contains(" /sends")
            || route.contains(" /reports/")
            || route.contains(" /spend");
        if admin {
            assert_eq!(*rate, default_of(&template, "AdminRateLimit"), "{route}");
        }
    }
    assert!(rate_of.len() >= 31, "only {} routes", rate_of.len());
}

#[test]
fn every_function_has_reserved_concurrency_and_the_account_keeps_some_unreserved() {
    let template = template_yaml();
    let resources = template["Resources"].as_hash().unwrap();
    let mut reserved = 0;
    let mut functions = 0;
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        functions += 1;
        let setting = &resource["Properties"]["ReservedConcurrentExecutions"];
        // `!If [Reserves…, !Ref <parameter>, !Ref AWS::NoValue]`, or `!Ref <parameter>`.
        let parameter = match setting {
            Yaml::Array(choice) => choice[1].as_str(),
            Yaml::String(parameter) => Some(parameter.as_str()),
            _ => None,
        }
        .unwrap_or_else(|| panic!("{name:?} has no reserved concurrency"));
        let default = default_of(&template, parameter);
        assert!(default > 0, "{name:?} reserves nothing by default");
        reserved += default;
    }
    assert_eq!(functions, 13);
    // Lambda keeps at least 100 of an account's (default 1,000) unreserved.
    assert!(reserved <= 900, "{reserved} reserved");
    let webhook = default_of(&template, "WebhookReservedConcurrency");
    assert!(webhook >= default_of(&template, "ClicksReservedConcurrency"));
    assert!(webhook >= default_of(&template, "WidgetReservedConcurrency"));
    // The public widget routes run in a function of their own, not in Meta's.
    for (function, (_, routes)) in template_functions() {
        let widget = routes
            .iter()
            .any(|(_, path)| path.starts_with("/webhooks/widget"));
        let meta = routes.iter().any(|(_, path)| path == "/webhooks/meta");
        assert!(
            !(widget && meta),
            "{function} serves the widget and Meta's webhook"
        );
    }
    let matcher = &template["Resources"]["MatcherFunction"]["Properties"]["Events"]["MatchJobs"];
    assert_eq!(
        matcher["Properties"]["ScalingConfig"]["MaximumConcurrency"].as_str(),
        Some("MatcherConcurrency"),
        "a matcher throttled by its own reservation would burn SQS receives"
    );
}

/// A route of the admin API (behind the admin key), by its path.
fn is_admin_route(path: &str) -> bool {
    [
        "/instances/",
        "/offers",
        "/sends",
        "/reports/",
        "/spend",
        "/catalog/",
        "/conversions/",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
}

#[test]
fn public_ingest_and_the_admin_api_never_share_a_function() {
    // Different callers, different limits, different roles: a function facing Meta, browsers,
    // clicks or affiliate platforms holds no admin right, and the reverse.
    let mut admin_functions = 0;
    for (function, (_, routes)) in template_functions() {
        let admin = routes
            .iter()
            .filter(|(_, path)| is_admin_route(path))
            .count();
        assert!(
            admin == 0 || admin == routes.len(),
            "{function} serves admin and public routes: {routes:?}"
        );
        if admin > 0 {
            admin_functions += 1;
        }
    }
    assert_eq!(
        admin_functions, 5,
        "rules, contacts, revenue, spend and destinations"
    );
}

/// The SSM parameters a function's role may read (its `ssm:GetParameters` statement), by name.
fn secrets_in_role(template: &Yaml, properties: &Yaml) -> BTreeSet<String> {
    let mut statements: Vec<&Yaml> = Vec::new();
    for policy in properties["Policies"].as_vec().into_iter().flatten() {
        statements.extend(policy["Statement"].as_vec().into_iter().flatten());
    }
    // An explicit role (`!GetAtt <Role>.Arn`) carries its statements in its policy documents.
    if let Some(role) = properties["Role"].as_str() {
        let role = &template["Resources"][role.trim_end_matches(".Arn")]["Properties"];
        for policy in role["Policies"].as_vec().into_iter().flatten() {
            statements.extend(
                policy["PolicyDocument"]["Statement"]
                    .as_vec()
                    .into_iter()
                    .flatten(),
            );
        }
    }
    let mut secrets = BTreeSet::new();
    for statement in statements {
        let actions = statement["Action"].as_vec().into_iter().flatten();
        if !actions
            .into_iter()
            .any(|action| action.as_str() == Some("ssm:GetParameters"))
        {
            continue;
        }
        for resource in statement["Resource"]
            .as_vec()
            .expect("a list of parameters")
        {
            let arn = resource.as_str().expect("a parameter ARN");
            let name = arn
                .split("${SecretsPrefix}")
                .nth(1)
                .expect("under SecretsPrefix");
            secrets.insert(name.to_owned());
        }
    }
    secrets
}

/// The secrets a function's binary asks Parameter Store for: every `SecretName::…` its
/// `main.rs` names (`SecretName::ADMIN` is the admin key and the read-only key).
fn secrets_in_main(binary: &str) -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../functions/{binary}/src/main.rs"));
    let text = std::fs::read_to_string(path).expect("the function's main.rs");
    let mut secrets = BTreeSet::new();
    for (at, _) in text.match_indices("SecretName::") {
        let rest = &text[at + "SecretName::".len()..];
        let variant: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let names: Vec<SecretName> = match variant.as_str() {
            "ADMIN" => SecretName::ADMIN.to_vec(),
            "ALL" => SecretName::ALL.to_vec(),
            variant => SecretName::ALL
                .into_iter()
                .filter(|name| format!("{name:?}") == variant)
                .collect(),
        };
        assert!(!names.is_empty(), "{binary}: unknown SecretName::{variant}");
        secrets.extend(names.iter().map(|name| name.name().to_owned()));
    }
    secrets
}

#[test]
fn each_function_may_read_exactly_the_secrets_its_binary_asks_for() {
    let template = template_yaml();
    let mut functions = 0;
    for (name, resource) in template["Resources"].as_hash().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["Binary"].as_str().expect("a binary");
        assert_eq!(
            secrets_in_role(&template, &resource["Properties"]),
            secrets_in_main(binary),
            "{name:?} (binary {binary}): the secrets its role may read are not those it reads"
        );
        functions += 1;
    }
    assert_eq!(functions, 13);
    assert!(secrets_in_main("webhook").contains("META_APP_SECRET"));
}

/// The variables a function's `main.rs` requires (`config::required("NAME")`).
fn variables_required_by_main(binary: &str) -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../functions/{binary}/src/main.rs"));
    let text = std::fs::read_to_string(path).expect("the function's main.rs");
    text.match_indices("config::required(\"")
        .map(|(at, call)| {
            let rest = &text[at + call.len()..];
            rest[..rest.find('"').expect("a closing quote")].to_owned()
        })
        // `LambdaStart::secrets_while` reads the secrets under SECRETS_PREFIX.
        .chain(
            text.contains("secrets_while(")
                .then(|| "SECRETS_PREFIX".to_owned()),
        )
        .collect()
}

#[test]
fn each_function_gets_every_variable_its_binary_requires() {
    let template = template_yaml();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    let mut required = 0;
    for (name, resource) in template["Resources"].as_hash().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["Binary"].as_str().expect("a binary");
        let own = &resource["Properties"]["Environment"]["Variables"];
        for variable in variables_required_by_main(binary) {
            let key = Yaml::String(variable.clone());
            assert!(
                globals.as_hash().unwrap().contains_key(&key)
                    || own.as_hash().is_some_and(|own| own.contains_key(&key)),
                "{name:?} (binary {binary}) requires {variable}, which the template does not set"
            );
            required += 1;
        }
    }
    assert!(required >= 7, "only {required} required variables found");
}

#[test]
fn the_log_level_never_reaches_trace() {
    let template = template_yaml();
    let allowed: Vec<&str> = template["Parameters"]["LogLevel"]["AllowedValues"]
        .as_vec()
        .expect("LogLevel is limited")
        .iter()
        .map(|value| value.as_str().unwrap())
        .collect();
    assert_eq!(allowed, ["error", "warn", "info", "debug"]);
    assert_eq!(
        template["Globals"]["Function"]["Environment"]["Variables"]["RUST_LOG"].as_str(),
        Some("LogLevel")
    );
    // What a hand-set value cannot do either (the clamp in code): see shared::telemetry.
    let filter = shared::telemetry::log_filter(Some("trace"));
    assert!(
        filter.to_string().contains("lambda_runtime=info"),
        "{filter}"
    );
}
