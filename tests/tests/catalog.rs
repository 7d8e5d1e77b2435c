//! Catalog feeds through `POST /catalog/import` (the spend function's route), on both stores:
//! Meta's feed as it comes and its variants (bad lines with their reasons, a BOM, quoted
//! commas, a tab-separated feed), a re-import that changes nothing, a file with no usable row.

use axum::body::Body;
use http::{Request, StatusCode};
use integration_tests::*;
use serde_json::{Value, json};

on_every_store!(
    a_feed_imports_with_bad_lines_named_and_again_changes_nothing,
    a_bom_quoted_commas_and_tabs_read_as_plain_csv,
    a_file_with_no_usable_row_or_a_bad_catalog_id_is_refused,
    a_product_contact_shows_its_product_on_the_read_and_the_listing,
    events_show_their_products_and_meta_s_product_ids_find_theirs,
);

fn catalog_fixture(name: &str) -> Vec<u8> {
    fixture_in("catalog", name)
}

fn feed_import(query: &str, file: Vec<u8>) -> Request<Body> {
    Request::post(format!("/catalog/import{query}"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "text/csv")
        .body(Body::from(file))
        .unwrap()
}

fn app(stores: &Stores) -> axum::Router {
    shared::http::serve_json_errors(spend_router(&secrets().admin_keys, stores, None))
}

/// The stored products under `keys`, by id, as JSON.
async fn stored(stores: &Stores, keys: &[(&str, &str)]) -> Vec<Value> {
    let keys: Vec<(String, String)> = keys
        .iter()
        .map(|(catalog, id)| ((*catalog).to_owned(), (*id).to_owned()))
        .collect();
    let mut found = stores.catalog.products(&keys).await.unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
        .iter()
        .map(|p| serde_json::to_value(p).unwrap())
        .collect()
}

async fn a_feed_imports_with_bad_lines_named_and_again_changes_nothing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let file = catalog_fixture("meta_catalog_bad_lines.csv");
    let (status, first) = call(
        &app,
        feed_import("?catalog_id=1537566713439863", file.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["imported"].clone(), first["replaced"].clone()),
        (json!(2), json!(0))
    );
    let reasons: Vec<(u64, String)> = first["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|skip| {
            (
                skip["line"].as_u64().unwrap(),
                skip["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        reasons.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![3, 4, 5, 6],
        "{first}"
    );
    assert_eq!(reasons[0].1, "no id");
    assert!(
        reasons[1].1.starts_with("price \"cheap\""),
        "{}",
        reasons[1].1
    );
    assert!(
        reasons[2].1.contains("currency \"PESOS\""),
        "{}",
        reasons[2].1
    );
    assert!(
        reasons[3].1.contains("title is longer than 200"),
        "{}",
        reasons[3].1
    );
    let keys = [
        ("1537566713439863", "tee-blue-m"),
        ("1537566713439863", "cap-black"),
    ];
    let before = stored(&stores, &keys).await;
    assert_eq!(before.len(), 2);
    assert_eq!(before[1]["title"], "Blue tee (M)");
    assert_eq!(before[1]["description"], "Organic cotton, regular fit");
    assert_eq!(
        (
            before[1]["price"].clone(),
            before[1]["sale_price"].clone(),
            before[1]["currency"].clone()
        ),
        (json!("249.50"), json!("199.00"), json!("MXN"))
    );
    // Nothing went under the catalog-less key.
    assert!(stored(&stores, &[("any", "tee-blue-m")]).await.is_empty());

    let (status, again) = call(&app, feed_import("?catalog_id=1537566713439863", file)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["imported"].clone(), again["replaced"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(again["skipped"], first["skipped"]);
    assert_eq!(stored(&stores, &keys).await, before);
}

async fn a_bom_quoted_commas_and_tabs_read_as_plain_csv(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let (status, plain) = call(
        &app,
        feed_import("", catalog_fixture("meta_catalog_feed.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain, json!({"imported": 2, "replaced": 0, "skipped": []}));
    let plain_products = stored(&stores, &[("any", "tee-blue-m"), ("any", "cap-black")]).await;
    assert_eq!(
        plain_products[1]["description"],
        "Organic cotton, regular fit"
    );

    let (status, bom) = call(
        &app,
        feed_import("", catalog_fixture("meta_catalog_bom.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{bom}");
    assert_eq!(bom, json!({"imported": 0, "replaced": 2, "skipped": []}));
    assert_eq!(
        stored(&stores, &[("any", "tee-blue-m"), ("any", "cap-black")]).await,
        plain_products
    );

    let (status, tabs) = call(
        &app,
        feed_import("", catalog_fixture("meta_catalog_feed.tsv")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tabs}");
    assert_eq!(tabs, json!({"imported": 1, "replaced": 0, "skipped": []}));
    let mug = stored(&stores, &[("any", "mug-white")]).await;
    assert_eq!(
        (
            mug[0]["title"].clone(),
            mug[0]["price"].clone(),
            mug[0]["currency"].clone()
        ),
        (json!("White mug"), json!("9.99"), json!("USD"))
    );
    assert_eq!(mug[0]["description"], "Stoneware, 350 ml");
}

async fn a_file_with_no_usable_row_or_a_bad_catalog_id_is_refused(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let app = app(&stores);
    let (status, body) = call(
        &app,
        feed_import("", catalog_fixture("meta_catalog_no_usable_row.csv")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("line 2: no id") && message.contains("line 3"),
        "{body}"
    );
    let (status, body) = call(&app, feed_import("", b"name,cost\nx,1\n".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for bad in [
        "?catalog_id=abc",
        "?catalog_id=",
        "?catalog_id=123456789012345678901234567890123",
    ] {
        let (status, body) = call(
            &app,
            feed_import(bad, catalog_fixture("meta_catalog_feed.csv")),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.to_string().contains("catalog_id"), "{body}");
    }
    assert!(stored(&stores, &[("any", "tee-blue-m")]).await.is_empty());
    let (status, _) = call(
        &app,
        Request::post("/catalog/import")
            .body(Body::from(catalog_fixture("meta_catalog_feed.csv")))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_product_contact_shows_its_product_on_the_read_and_the_listing(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    let (status, imported) = call(
        app,
        feed_import(
            "?catalog_id=1537566713439863",
            catalog_fixture("meta_catalog_feed.csv"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    for name in [
        "whatsapp_referred_product.json",
        "messenger_product_referral.json",
    ] {
        let (status, report) = call(app, signed_delivery(&fixture(name))).await;
        assert_eq!(
            (status, report["applied"].clone()),
            (StatusCode::OK, json!(1)),
            "{name}: {report}"
        );
    }
    let expected = json!({
        "title": "Blue tee (M)",
        "price": "249.50",
        "currency": "MXN",
        "image_link": "https://shop.example/img/tee-blue-m.jpg",
        "description": "Organic cotton, regular fit",
        "link": "https://shop.example/p/tee-blue-m",
        "availability": "in stock",
    });
    let (status, read) = call(
        app,
        admin_get("/instances/106540352242922/contacts/821098765432"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["acquisition"]["product_id"], "tee-blue-m");
    assert_eq!(read["acquisition"]["product"], expected, "{read}");
    let (status, listed) = call(app, admin_get("/instances/106540352242922/contacts")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["contacts"][0]["acquisition"]["product"], expected,
        "{listed}"
    );

    // The dashboard's contact panel shows the same product, its picture without a referrer.
    let (csp, page) = panel(&stores, "106540352242922/contacts/821098765432").await;
    assert!(csp.contains("img-src 'self' data: https:;"), "{csp}");
    for shown in [
        "data-field=\"product_title\">Blue tee (M)<",
        "data-field=\"product_price\">249.50 MXN<",
        "data-field=\"product_description\">Organic cotton, regular fit<",
        "src=\"https://shop.example/img/tee-blue-m.jpg\" alt=\"Blue tee (M)\" referrerpolicy=\"no-referrer\"",
    ] {
        assert!(page.contains(shown), "{shown} on the panel: {page}");
    }
    let (_, page) = panel(&stores, "108822334455667/contacts/7391022845561209").await;
    assert!(
        !page.contains("product_title"),
        "an unknown product shows its id alone"
    );
    assert!(page.contains("6021948837712345"));

    // Messenger names Meta's product id, which no feed line carries: the id alone.
    let (status, listed) = call(app, admin_get("/instances/108822334455667/contacts")).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let acquisition = &listed["contacts"][0]["acquisition"];
    assert_eq!(acquisition["product_id"], "6021948837712345", "{listed}");
    assert!(acquisition.get("product").is_none(), "{listed}");
}

/// The panel of `path` (`{instance}/contacts/{contact}`) as a signed-in reader sees it: its
/// Content-Security-Policy and its page.
async fn panel(stores: &Stores, path: &str) -> (String, String) {
    let dashboard = dashboard_app(stores);
    let cookie = dashboard_cookie(&dashboard, READONLY_KEY).await;
    let request = Request::get(format!("/app/instances/{path}"))
        .header(http::header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let answer = tower::ServiceExt::oneshot(dashboard, request)
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = http_body_util::BodyExt::collect(answer.into_body())
        .await
        .unwrap()
        .to_bytes();
    (csp, String::from_utf8_lossy(&page).into_owned())
}

/// The contact's events named `name`, as the contact API shows them.
fn events_named<'a>(contact: &'a Value, name: &str) -> Vec<&'a Value> {
    contact["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["name"] == name)
        .collect()
}

async fn events_show_their_products_and_meta_s_product_ids_find_theirs(backend: Backend) {
    let Some((stores, _guard)) = fresh_stores(backend).await else {
        return;
    };
    let engine = engine_app(&stores);
    let app = &engine.app;
    // Meta's feed with the product ids Messenger and Instagram name, as the Graph API's
    // `/{catalog_id}/products?fields=id,retailer_id` lists them; one of them malformed.
    let feed = "id,title,price,image_link,availability,fb_product_id\n\
        tee-blue-m,Blue tee (M),249.50 MXN,https://shop.example/img/tee-blue-m.jpg,in stock,6021948837712345\n\
        cap-black,Black cap,199.00 MXN,https://shop.example/img/cap-black.jpg,in stock,5599887766554433\n\
        mug-white,White mug,9.99 USD,,,not-an-id\n";
    let (status, imported) = call(
        app,
        feed_import("?catalog_id=1537566713439863", feed.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{imported}");
    // Each line counts once, whatever keys it is filed under.
    assert_eq!(
        (imported["imported"].clone(), imported["replaced"].clone()),
        (json!(2), json!(0)),
        "{imported}"
    );
    assert_eq!(imported["skipped"][0]["line"], 4, "{imported}");
    assert!(
        imported["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("fb_product_id"),
        "{imported}"
    );
    for name in [
        "whatsapp_referred_product.json",
        "whatsapp_order.json",
        "messenger_product_referral.json",
        "instagram_product_referral.json",
    ] {
        let (status, report) = call(app, signed_delivery(&fixture(name))).await;
        assert_eq!(status, StatusCode::OK, "{name}: {report}");
    }
    let tee = |price: &str| {
        json!({"title": "Blue tee (M)", "price": price, "currency": "MXN",
            "image_link": "https://shop.example/img/tee-blue-m.jpg", "description": "",
            "link": "", "availability": "in stock"})
    };
    let cap = json!({"title": "Black cap", "price": "199.00", "currency": "MXN",
        "image_link": "https://shop.example/img/cap-black.jpg", "description": "", "link": "",
        "availability": "in stock"});

    // A WhatsApp inquiry names the retailer id: the event shows the product.
    let (_, inquirer) = call(
        app,
        admin_get("/instances/106540352242922/contacts/821098765432"),
    )
    .await;
    let inquiries = events_named(&inquirer, "product_inquiry");
    assert_eq!(inquiries.len(), 1, "{inquirer}");
    assert_eq!(
        inquiries[0]["products"],
        json!({"tee-blue-m": tee("249.50")}),
        "{inquirer}"
    );
    // A message without a product shows none.
    assert!(
        events_named(&inquirer, "message_received")[0]
            .get("products")
            .is_none()
    );

    // An order shows each line's product, on the read and on the listing alike.
    let (_, buyer) = call(
        app,
        admin_get("/instances/106540352242922/contacts/5215512345678"),
    )
    .await;
    let orders = events_named(&buyer, "order_placed");
    assert_eq!(
        orders[0]["products"],
        json!({"tee-blue-m": tee("249.50"), "cap-black": cap}),
        "{buyer}"
    );
    let (_, listed) = call(app, admin_get("/instances/106540352242922/contacts")).await;
    let listed_buyer = listed["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|contact| contact["contact_id"] == "5215512345678")
        .unwrap();
    assert_eq!(
        events_named(listed_buyer, "order_placed")[0]["products"],
        orders[0]["products"]
    );

    // Messenger and Instagram name Meta's product id: found through the feed's fb_product_id,
    // on the acquisition and on the inquiry event.
    for (path, expected) in [
        ("108822334455667/contacts/7391022845561209", tee("249.50")),
        ("17841400123456789/contacts/662019384756102", cap.clone()),
    ] {
        let (status, contact) = call(app, admin_get(&format!("/instances/{path}"))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {contact}");
        assert_eq!(contact["acquisition"]["product"], expected, "{contact}");
        let id = contact["acquisition"]["product_id"].as_str().unwrap();
        assert_eq!(
            events_named(&contact, "product_inquiry")[0]["products"][id],
            expected,
            "{contact}"
        );
    }

    // The panel shows the order's products beside the event, pictures without a referrer.
    let (_, page) = panel(&stores, "106540352242922/contacts/5215512345678").await;
    let shown: Vec<&str> = page.split("data-event-product>").skip(1).collect();
    assert_eq!(shown.len(), 2, "{page}");
    assert!(
        page.contains("<strong>Black cap</strong> 199.00 MXN · in stock"),
        "{page}"
    );
    assert!(
        page.contains(
            "src=\"https://shop.example/img/tee-blue-m.jpg\" alt=\"\" referrerpolicy=\"no-referrer\""
        ),
        "{page}"
    );
    let (_, page) = panel(&stores, "108822334455667/contacts/7391022845561209").await;
    assert!(page.contains("<strong>Blue tee (M)</strong>"), "{page}");
}
