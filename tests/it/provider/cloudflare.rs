//! The Cloudflare DNS client against a scripted fake.

use std::sync::Arc;

use fabrik::id::DeploymentId;
use fabrik::ownership::OwnershipMark;
use fabrik::provider::*;
use fabrik::secret::SecretValue;
use serde_json::{Value, json};

use super::fake::{Fake, Reply, Retries, http, snapshots};

const TOKEN: &str = "cf-api-token-s3cret-value";
const Z: &str = "/client/v4/zones/zone-1/dns_records";

fn mark() -> OwnershipMark {
    OwnershipMark::new(
        DeploymentId::new("blog").unwrap(),
        "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
    )
}

fn zone() -> Zone {
    Zone {
        id: "zone-1".into(),
        name: "example.com".into(),
    }
}

fn ok(result: Value) -> Reply {
    Reply::json(
        200,
        json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

fn page(result: Value, page: u32, per_page: u32, total: u64) -> Reply {
    let count = result.as_array().map_or(0, Vec::len);
    Reply::json(
        200,
        json!({"success": true, "errors": [], "messages": [], "result": result,
        "result_info": {"page": page, "per_page": per_page, "count": count, "total_count": total}}),
    )
}

fn fail(status: u16, code: u64, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}),
    )
}

fn record(id: &str, content: &str, comment: Option<&str>) -> Value {
    json!({"id": id, "zone_id": "zone-1", "zone_name": "example.com", "name": "blog.example.com",
        "type": "A", "content": content, "proxiable": true, "proxied": false, "ttl": 300,
        "comment": comment, "tags": [], "created_on": "2024-01-01T00:00:00Z", "modified_on": "2024-01-01T00:00:00Z"})
}

fn desired() -> RecordDesired {
    RecordDesired {
        kind: RecordType::A,
        name: "blog.example.com".into(),
        content: "203.0.113.10".into(),
        ttl: 300,
        proxied: false,
        adopt: false,
    }
}

async fn setup() -> (Fake, CloudflareClient) {
    let fake = Fake::start().await;
    let client = CloudflareClient::new(
        CloudflareConfig {
            api_url: format!("{}/client/v4", fake.base),
            token: SecretValue::new(TOKEN),
            use_tags: false,
        },
        http(Arc::new(Retries::default())),
    )
    .unwrap();
    (fake, client)
}

#[tokio::test]
async fn find_zone_by_exact_name_with_bearer_token() {
    let (fake, client) = setup().await;
    fake.on(
        "GET",
        "/client/v4/zones",
        vec![page(
            json!([{"id":"zone-1","name":"example.com","status":"active"}]),
            1,
            20,
            1,
        )],
    );
    assert_eq!(client.find_zone("Example.com").await.unwrap(), zone());
    let hit = &fake.hits()[0];
    assert_eq!(hit.line(), "GET /client/v4/zones?name=example.com");
    assert_eq!(
        hit.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert!(hit.header("user-agent").unwrap().starts_with("fabrik/"));
}

#[tokio::test]
async fn zone_for_walks_suffixes() {
    let (fake, client) = setup().await;
    fake.on("GET", "/client/v4/zones", vec![page(json!([]), 1, 20, 0)]);
    fake.on(
        "GET",
        "/client/v4/zones?name=example.com",
        vec![page(
            json!([{"id":"zone-1","name":"example.com"}]),
            1,
            20,
            1,
        )],
    );
    assert_eq!(client.zone_for("a.blog.example.com").await.unwrap(), zone());
    assert_eq!(
        fake.lines()[..3],
        [
            "GET /client/v4/zones?name=a.blog.example.com",
            "GET /client/v4/zones?name=blog.example.com",
            "GET /client/v4/zones?name=example.com"
        ]
    );
}

#[tokio::test]
async fn list_records_follows_every_page() {
    let (fake, client) = setup().await;
    let q = "type=A&name=blog.example.com&per_page=500";
    fake.on(
        "GET",
        &format!("{Z}?{q}&page=1"),
        vec![page(
            json!([
                record("r1", "203.0.113.1", None),
                record("r2", "203.0.113.2", Some(&mark().to_compact()))
            ]),
            1,
            2,
            3,
        )],
    );
    fake.on(
        "GET",
        &format!("{Z}?{q}&page=2"),
        vec![page(
            json!([record("r3", "203.0.113.3", Some("note by hand"))]),
            2,
            2,
            3,
        )],
    );
    let records = client
        .list_records(&zone(), RecordType::A, "blog.example.com")
        .await
        .unwrap();
    assert_eq!(
        records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2", "r3"]
    );
    assert_eq!(records[1].mark, Some(mark()));
    assert_eq!(records[2].mark, None);
    assert_eq!(fake.count("GET", Z), 2);
}

#[tokio::test]
async fn create_sends_the_mark_in_the_comment() {
    let (fake, client) = setup().await;
    fake.on(
        "POST",
        Z,
        vec![ok(record(
            "new",
            "203.0.113.10",
            Some(&mark().to_compact()),
        ))],
    );
    let mut d = desired();
    d.proxied = true;
    let r = client.create_record(&zone(), &d, &mark()).await.unwrap();
    assert_eq!(r.mark, Some(mark()));
    assert_eq!(
        fake.find("POST", Z)[0].json(),
        json!({"type":"A","name":"blog.example.com","content":"203.0.113.10","ttl":1,"proxied":true,"comment":mark().to_compact()})
    );
}

#[tokio::test]
async fn an_identical_record_of_ours_is_returned_instead_of_failing() {
    let (fake, client) = setup().await;
    fake.on(
        "POST",
        Z,
        vec![fail(400, 81058, "An identical record already exists.")],
    );
    fake.on(
        "GET",
        Z,
        vec![page(
            json!([record("r9", "203.0.113.10", Some(&mark().to_compact()))]),
            1,
            500,
            1,
        )],
    );
    let r = client
        .create_record(&zone(), &desired(), &mark())
        .await
        .unwrap();
    assert_eq!(r.id, "r9");
    assert_eq!(fake.count("POST", Z), 1);
}

#[tokio::test]
async fn an_identical_foreign_record_is_refused() {
    let (fake, client) = setup().await;
    fake.on("POST", Z, vec![fail(400, 81057, "Record already exists.")]);
    fake.on(
        "GET",
        Z,
        vec![page(json!([record("r9", "203.0.113.10", None)]), 1, 500, 1)],
    );
    let e = client
        .create_record(&zone(), &desired(), &mark())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned);
    assert_eq!(e.code.as_deref(), Some("81057"));
    snapshots().bind(|| insta::assert_snapshot!("cloudflare_81057_foreign", e.report()));
}

fn remote(comment: Option<&str>) -> RemoteRecord {
    RemoteRecord {
        id: "r1".into(),
        kind: "A".into(),
        name: "blog.example.com".into(),
        content: "203.0.113.1".into(),
        ttl: 300,
        proxied: false,
        comment: comment.map(str::to_owned),
        tags: vec![],
        mark: comment.and_then(OwnershipMark::parse),
    }
}

#[tokio::test]
async fn update_patches_changes_and_refuses_foreign_records() {
    let (fake, client) = setup().await;
    let path = format!("{Z}/r1");
    fake.on(
        "PATCH",
        &path,
        vec![ok(record("r1", "203.0.113.10", Some(&mark().to_compact())))],
    );

    let e = client
        .update_record(&zone(), &remote(Some("by hand")), &desired(), &mark())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotOwned);
    assert_eq!(fake.count("PATCH", &path), 0);
    snapshots().bind(|| insta::assert_snapshot!("cloudflare_update_foreign", e.report()));

    client
        .update_record(
            &zone(),
            &remote(Some(&mark().to_compact())),
            &desired(),
            &mark(),
        )
        .await
        .unwrap();
    assert_eq!(
        fake.find("PATCH", &path)[0].json(),
        json!({"type":"A","name":"blog.example.com","content":"203.0.113.10"})
    );

    let mut same = desired();
    same.content = "203.0.113.1".into();
    let r = client
        .update_record(&zone(), &remote(Some(&mark().to_compact())), &same, &mark())
        .await
        .unwrap();
    assert_eq!(r.id, "r1");
    assert_eq!(fake.count("PATCH", &path), 1);

    let mut adopt = desired();
    adopt.adopt = true;
    client
        .update_record(&zone(), &remote(None), &adopt, &mark())
        .await
        .unwrap();
    // An adopted record is changed but not marked: it stays no one's, so
    // no rollback or destroy deletes it.
    assert_eq!(
        fake.find("PATCH", &path)[1].json(),
        json!({"type":"A","name":"blog.example.com","content":"203.0.113.10"})
    );
}

#[tokio::test]
async fn delete_treats_a_missing_record_as_gone() {
    let (fake, client) = setup().await;
    fake.on("DELETE", &format!("{Z}/r1"), vec![ok(json!({"id":"r1"}))]);
    fake.on(
        "DELETE",
        &format!("{Z}/r2"),
        vec![fail(404, 81044, "Record does not exist.")],
    );
    fake.on("DELETE", &format!("{Z}/r3"), vec![Reply::json(404, json!({"success":false,"errors":[{"code":7003,"message":"No route for the URI"}],"result":null}))]);
    assert!(
        !client
            .delete_record(&zone(), "r1")
            .await
            .unwrap()
            .already_gone
    );
    assert!(
        client
            .delete_record(&zone(), "r2")
            .await
            .unwrap()
            .already_gone
    );
    assert!(
        client
            .delete_record(&zone(), "r3")
            .await
            .unwrap()
            .already_gone
    );
}

#[tokio::test]
async fn list_owned_filters_by_comment_prefix_and_mark() {
    let (fake, client) = setup().await;
    fake.on(
        "GET",
        Z,
        vec![page(
            json!([
                record("r1", "1.1.1.1", Some(&mark().to_compact())),
                record("r2", "1.1.1.2", Some("fabrik:not-a-mark"))
            ]),
            1,
            500,
            2,
        )],
    );
    let owned = client.list_owned(&zone()).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(
        fake.hits()[0].query,
        "comment.startswith=fabrik%3A&per_page=500&page=1"
    );
}

#[tokio::test]
async fn cloudflare_error_codes_are_classified() {
    let (fake, client) = setup().await;
    fake.on(
        "GET",
        "/client/v4/zones",
        vec![fail(403, 10000, "Authentication error")],
    );
    let e = client.find_zone("example.com").await.unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::Forbidden(ForbiddenReason::MissingPermission { .. })
    ));
    snapshots().bind(|| insta::assert_snapshot!("cloudflare_403_10000", e.report()));

    fake.on(
        "POST",
        Z,
        vec![fail(
            400,
            81053,
            "An A, AAAA, or CNAME record with that host already exists.",
        )],
    );
    let e = client
        .create_record(&zone(), &desired(), &mark())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert_eq!(fake.count("GET", Z), 0);
    snapshots().bind(|| insta::assert_snapshot!("cloudflare_81053", e.report()));

    fake.on("GET", "/client/v4/zones", vec![Reply::json(200, json!({"success": false, "errors": [{"code": 1000, "message": "something odd"}], "result": null}))]);
    let e = client.find_zone("example.com").await.unwrap_err();
    snapshots().bind(|| insta::assert_snapshot!("cloudflare_success_false", e.report()));

    fake.on("GET", "/client/v4/zones", vec![Reply::json(400, json!({"success":false,"errors":[{"code":9106,"message":"Missing X-Auth-Key, X-Auth-Email or Authorization headers"}]}))]);
    let e = client.find_zone("example.com").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let all = format!("{}{e:?}", e.report());
    assert!(!all.contains(TOKEN));
}

#[tokio::test(start_paused = true)]
async fn cloudflare_429_is_retried_after_retry_after() {
    let (fake, client) = setup().await;
    fake.on(
        "GET",
        "/client/v4/zones",
        vec![
            Reply::json(429, json!({"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}]})).header("retry-after", "3"),
            page(json!([{"id":"zone-1","name":"example.com"}]), 1, 20, 1),
        ],
    );
    let start = tokio::time::Instant::now();
    assert_eq!(client.find_zone("example.com").await.unwrap(), zone());
    assert!(start.elapsed() >= std::time::Duration::from_secs(3));
    assert_eq!(fake.count("GET", "/client/v4/zones"), 2);
}

#[tokio::test(start_paused = true)]
async fn cloudflare_5xx_on_create_is_not_repeated() {
    let (fake, client) = setup().await;
    fake.on(
        "POST",
        Z,
        vec![Reply::json(502, json!({"success":false,"errors":[]}))],
    );
    let e = client
        .create_record(&zone(), &desired(), &mark())
        .await
        .unwrap_err();
    assert!(e.outcome_unknown());
    assert_eq!(fake.count("POST", Z), 1);
    snapshots().bind(|| insta::assert_snapshot!("cloudflare_5xx_create", e.report()));
}
