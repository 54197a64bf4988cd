//! The simulated Cloudflare API behaves as `contracts/cloudflare/NOTES.md`
//! says: envelope, pagination, filters and the idempotency error codes.

use reqwest::Method;
use serde_json::json;

use super::support::Sandbox;

#[tokio::test]
async fn zones_are_found_by_name_and_configured_zones_exist() {
    let sb = Sandbox::with(|c| c.zones = vec!["test.dev".into()]).await;
    let all = sb.cf(Method::GET, "/zones", None).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["success"], true);
    assert_eq!(all.body["result_info"]["total_count"], 2);
    let one = sb.cf(Method::GET, "/zones?name=example.com", None).await;
    assert_eq!(one.body["result"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["result"][0]["name"], "example.com");
    assert_eq!(one.body["result"][0]["status"], "active");
    let id = one.body["result"][0]["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let ends = sb.cf(Method::GET, "/zones?name=ends_with:.dev", None).await;
    assert_eq!(ends.body["result"][0]["name"], "test.dev");
    let none = sb.cf(Method::GET, "/zones?name=nope.org", None).await;
    assert_eq!(none.body["result"], json!([]));
    let detail = sb.cf(Method::GET, &format!("/zones/{id}"), None).await;
    assert_eq!(detail.body["result"]["name"], "example.com");
}

#[tokio::test]
async fn auth_failures_use_the_envelope() {
    let sb = Sandbox::start().await;
    let url = format!("{}/zones", sb.handle.cloudflare_url);
    let missing = super::support::send(sb.http.get(&url)).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["errors"][0]["code"], 9106);
    assert_eq!(missing.body["success"], false);
    assert_eq!(missing.body["result"], serde_json::Value::Null);
    let wrong = super::support::send(sb.http.get(&url).bearer_auth("nope")).await;
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.body["errors"][0]["code"], 10000);
    let verify = sb.cf(Method::GET, "/user/tokens/verify", None).await;
    assert_eq!(verify.body["result"]["status"], "active");
}

#[tokio::test]
async fn records_are_created_with_fqdn_names_and_duplicates_are_refused() {
    let sb = Sandbox::start().await;
    let zone = sb.zone_id().await;
    let records = format!("/zones/{zone}/dns_records");
    let created = sb
        .cf(
            Method::POST,
            &records,
            Some(json!({"type": "A", "name": "app", "content": "203.0.113.10", "ttl": 1, "proxied": false,
                        "comment": "managed-by=fabrik deployment=blog run=01jdx3v5q6m7n8p9r0s1t2v3w4",
                        "tags": ["managed-by:fabrik"]})),
        )
        .await;
    assert_eq!(created.status, 200, "{created:?}");
    let record = &created.body["result"];
    assert_eq!(
        record["name"], "app.example.com",
        "responses carry the FQDN"
    );
    assert_eq!(record["zone_name"], "example.com");
    assert_eq!(record["proxiable"], true);
    let id = record["id"].as_str().unwrap().to_owned();

    let dup = sb
        .cf(
            Method::POST,
            &records,
            Some(json!({"type": "A", "name": "app.example.com", "content": "203.0.113.10"})),
        )
        .await;
    assert_eq!(dup.status, 400);
    assert_eq!(dup.body["errors"][0]["code"], 81058);
    // A second A record with other content is allowed (multi-value).
    let second = sb
        .cf(
            Method::POST,
            &records,
            Some(json!({"type": "A", "name": "app", "content": "203.0.113.11"})),
        )
        .await;
    assert_eq!(second.status, 200);
    let cname = sb
        .cf(
            Method::POST,
            &records,
            Some(json!({"type": "CNAME", "name": "app", "content": "x.example.net"})),
        )
        .await;
    assert_eq!(cname.body["errors"][0]["code"], 81053);
    let www = sb
        .cf(
            Method::POST,
            &records,
            Some(json!({"type": "CNAME", "name": "www", "content": "app.example.com"})),
        )
        .await;
    assert_eq!(www.status, 200);
    let a_on_cname = sb
        .cf(
            Method::POST,
            &records,
            Some(json!({"type": "A", "name": "www", "content": "203.0.113.12"})),
        )
        .await;
    assert_eq!(a_on_cname.body["errors"][0]["code"], 81054);

    // Validation.
    for (body, code) in [
        (
            json!({"type": "A", "name": "x", "content": "not-an-ip"}),
            9005,
        ),
        (
            json!({"type": "AAAA", "name": "x", "content": "1.2.3.4"}),
            9006,
        ),
        (
            json!({"type": "TXT", "name": "x", "content": "v", "proxied": true}),
            9041,
        ),
        (
            json!({"type": "A", "name": "x", "content": "1.2.3.4", "ttl": 5}),
            9021,
        ),
        (
            json!({"type": "A", "name": "x", "content": "1.2.3.4", "comment": "c".repeat(101)}),
            9109,
        ),
        (json!({"type": "BOGUS", "name": "x", "content": "v"}), 9020),
    ] {
        let resp = sb.cf(Method::POST, &records, Some(body.clone())).await;
        assert_eq!(resp.status, 400, "{body}");
        assert_eq!(resp.body["errors"][0]["code"], code, "{body}: {resp:?}");
    }

    // Read, patch, put, delete; a stale id is 81044.
    let got = sb.cf(Method::GET, &format!("{records}/{id}"), None).await;
    assert_eq!(got.body["result"]["content"], "203.0.113.10");
    let patched = sb
        .cf(
            Method::PATCH,
            &format!("{records}/{id}"),
            Some(json!({"content": "203.0.113.20"})),
        )
        .await;
    assert_eq!(patched.body["result"]["content"], "203.0.113.20");
    assert_eq!(
        patched.body["result"]["comment"],
        "managed-by=fabrik deployment=blog run=01jdx3v5q6m7n8p9r0s1t2v3w4",
        "PATCH keeps what it was not given"
    );
    let put = sb
        .cf(
            Method::PUT,
            &format!("{records}/{id}"),
            Some(json!({"type": "A", "name": "app", "content": "203.0.113.21", "proxied": true, "ttl": 300})),
        )
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    assert!(
        put.body["result"].get("comment").is_none(),
        "PUT resets omitted fields"
    );
    assert_eq!(put.body["result"]["tags"], json!([]));
    assert_eq!(
        put.body["result"]["ttl"], 1,
        "proxied records have automatic TTL"
    );
    let deleted = sb
        .cf(Method::DELETE, &format!("{records}/{id}"), None)
        .await;
    assert_eq!(deleted.body["result"], json!({"id": id}));
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let gone = sb
            .cf(
                method.clone(),
                &format!("{records}/{id}"),
                Some(json!({"content": "1.1.1.1"})),
            )
            .await;
        assert_eq!(gone.status, 404, "{method}");
        assert_eq!(gone.body["errors"][0]["code"], 81044);
    }
    let bad_id = sb.cf(Method::GET, &format!("{records}/xyz"), None).await;
    assert_eq!(bad_id.body["errors"][0]["code"], 7003);
    let bad_zone = sb.cf(Method::GET, "/zones/0123/dns_records", None).await;
    assert_eq!(bad_zone.body["errors"][0]["code"], 7003);
}

#[tokio::test]
async fn lists_filter_and_paginate() {
    let sb = Sandbox::start().await;
    let zone = sb.zone_id().await;
    let records = format!("/zones/{zone}/dns_records");
    for i in 0..12 {
        let comment = if i % 2 == 0 {
            "managed-by=fabrik deployment=blog run=01jdx3v5q6m7n8p9r0s1t2v3w4"
        } else {
            "by hand"
        };
        let tags = if i % 3 == 0 {
            json!(["owner:fabrik"])
        } else {
            json!([])
        };
        let resp = sb
            .cf(
                Method::POST,
                &records,
                Some(json!({"type": "TXT", "name": format!("t{i:02}"), "content": format!("v{i}"), "comment": comment, "tags": tags})),
            )
            .await;
        assert_eq!(resp.status, 200);
    }
    sb.cf(
        Method::POST,
        &records,
        Some(json!({"type": "A", "name": "t00", "content": "192.0.2.1"})),
    )
    .await;

    let count = |resp: &super::support::Resp| resp.body["result"].as_array().unwrap().len();
    let page1 = sb
        .cf(
            Method::GET,
            &format!("{records}?type=TXT&per_page=5&page=1"),
            None,
        )
        .await;
    assert_eq!(count(&page1), 5);
    assert_eq!(
        page1.body["result_info"],
        json!({"page": 1, "per_page": 5, "count": 5, "total_count": 12, "total_pages": 3})
    );
    let page3 = sb
        .cf(
            Method::GET,
            &format!("{records}?type=TXT&per_page=5&page=3"),
            None,
        )
        .await;
    assert_eq!(count(&page3), 2);
    let page4 = sb
        .cf(
            Method::GET,
            &format!("{records}?type=TXT&per_page=5&page=4"),
            None,
        )
        .await;
    assert_eq!(count(&page4), 0, "an empty page ends the SDK's loop");

    let by_name = sb
        .cf(
            Method::GET,
            &format!("{records}?name=T00.example.com"),
            None,
        )
        .await;
    assert_eq!(count(&by_name), 2, "names are case-insensitive; both types");
    let exact = sb
        .cf(
            Method::GET,
            &format!("{records}?type=A&name.exact=t00.example.com"),
            None,
        )
        .await;
    assert_eq!(count(&exact), 1);
    let starts = sb
        .cf(Method::GET, &format!("{records}?name.startswith=t1"), None)
        .await;
    assert_eq!(count(&starts), 2);
    let mine = sb
        .cf(
            Method::GET,
            &format!("{records}?comment.startswith=managed-by%3Dfabrik"),
            None,
        )
        .await;
    assert_eq!(count(&mine), 6);
    let tagged = sb
        .cf(Method::GET, &format!("{records}?tag=owner:fabrik"), None)
        .await;
    assert_eq!(count(&tagged), 4);
    let present = sb
        .cf(Method::GET, &format!("{records}?tag.present=owner"), None)
        .await;
    assert_eq!(count(&present), 4);
    let absent = sb
        .cf(Method::GET, &format!("{records}?comment.absent"), None)
        .await;
    assert_eq!(count(&absent), 1);
    let any = sb
        .cf(
            Method::GET,
            &format!("{records}?match=any&name=t01.example.com&content=v2"),
            None,
        )
        .await;
    assert_eq!(count(&any), 2);
    let all = sb
        .cf(
            Method::GET,
            &format!("{records}?name=t01.example.com&content=v2"),
            None,
        )
        .await;
    assert_eq!(count(&all), 0);
    let ordered = sb
        .cf(
            Method::GET,
            &format!("{records}?type=TXT&order=name&direction=desc&per_page=5"),
            None,
        )
        .await;
    assert_eq!(ordered.body["result"][0]["name"], "t11.example.com");
}
