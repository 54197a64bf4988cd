//! Throughput of the sandbox on loopback with no injected latency, so that
//! benchmarks of Fabrik measure Fabrik. The target is at least 1,000
//! requests per second.
//!
//! `cargo bench --bench sandbox` runs each workload for 5 s (override with
//! `SANDBOX_BENCH_SECS`) with 16 concurrent keep-alive clients (override
//! with `SANDBOX_BENCH_CLIENTS`). Without `--bench` (as `cargo test
//! --benches` runs it) each workload runs for a fraction of a second as a
//! smoke test.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark binary reports its figures on stdout"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fabrik::sandbox::{SandboxConfig, SandboxHandle, start};
use serde_json::json;

/// One kind of request, built fresh for each call.
type Workload = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(name: &str, clients: u64, duration: Duration, workload: Workload) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (stop, done, failed, workload) =
            (stop.clone(), done.clone(), failed.clone(), workload.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let mut i = worker << 32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                match workload(&client, i).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    let rps = count as f64 / elapsed;
    println!(
        "{name:<40} {rps:>9.0} req/s  ({count} ok, {} failed, {clients} clients, {elapsed:.1} s)",
        failed.load(Ordering::Relaxed)
    );
    rps
}

async fn setup(handle: &SandboxHandle) -> (String, String) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = handle.credentials.coolify_token.expose().to_owned();
    let api = format!("{}/api/v1", handle.coolify_url);
    let projects: serde_json::Value = http
        .get(format!("{api}/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let servers: serde_json::Value = http
        .get(format!("{api}/servers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app: serde_json::Value = http
        .post(format!("{api}/applications/dockerimage"))
        .bearer_auth(&token)
        .json(&json!({
            "project_uuid": projects[0]["uuid"], "server_uuid": servers[0]["uuid"],
            "environment_name": "production", "docker_registry_image_name": "nginx",
            "name": "bench", "domains": "https://bench.example.com",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uuid = app["uuid"].as_str().unwrap().to_owned();
    http.post(format!("{api}/deploy?uuid={uuid}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // Default timings: queued 50 ms, in progress 200 ms.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let zones: serde_json::Value = http
        .get(format!("{}/zones?name=example.com", handle.cloudflare_url))
        .bearer_auth(handle.credentials.cloudflare_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let zone = zones["result"][0]["id"].as_str().unwrap().to_owned();
    http.post(format!(
        "{}/zones/{zone}/dns_records",
        handle.cloudflare_url
    ))
    .bearer_auth(handle.credentials.cloudflare_token.expose())
    .json(&json!({"type": "A", "name": "bench", "content": "127.0.0.1"}))
    .send()
    .await
    .unwrap();
    (uuid, zone)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let duration = if full {
        Duration::from_secs(env_number("SANDBOX_BENCH_SECS", 5))
    } else {
        Duration::from_millis(300)
    };
    let clients = env_number("SANDBOX_BENCH_CLIENTS", 16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let handle = start(SandboxConfig::new(dir.path().join("sandbox.db")))
            .await
            .unwrap();
        let (app, zone) = setup(&handle).await;
        let coolify_token = handle.credentials.coolify_token.expose().to_owned();
        let cf_token = handle.credentials.cloudflare_token.expose().to_owned();
        let api = format!("{}/api/v1", handle.coolify_url);

        let url = format!("{api}/applications/{app}");
        let token = coolify_token.clone();
        let read: Workload = Arc::new(move |c, _| c.get(&url).bearer_auth(&token));
        let read_rps = run("coolify GET /applications/{uuid}", clients, duration, read).await;

        let url = format!("{api}/applications/{app}/envs");
        let token = coolify_token.clone();
        let write: Workload = Arc::new(move |c, i| {
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"key": format!("K{i}"), "value": "v"}))
        });
        let write_rps = run(
            "coolify POST /applications/{uuid}/envs",
            clients,
            duration,
            write,
        )
        .await;

        let url = format!("{}/zones/{zone}/dns_records", handle.cloudflare_url);
        let token = cf_token.clone();
        let records: Workload = Arc::new(move |c, i| {
            c.post(&url)
                .bearer_auth(&token)
                .json(&json!({"type": "TXT", "name": format!("r{i}"), "content": "v"}))
        });
        let cf_rps = run(
            "cloudflare POST /zones/{id}/dns_records",
            clients,
            duration,
            records,
        )
        .await;

        // As the provider looks a record up: by type and exact name, in a
        // zone that by now holds every record the write workload created.
        let url = format!(
            "{}/zones/{zone}/dns_records?type=A&name.exact=bench.example.com",
            handle.cloudflare_url
        );
        let list: Workload = Arc::new(move |c, _| c.get(&url).bearer_auth(&cf_token));
        run(
            "cloudflare GET dns_records?type&name.exact",
            clients,
            duration,
            list,
        )
        .await;

        let addr = handle.app_http;
        let site = format!("http://{addr}/");
        let app_hit: Workload =
            Arc::new(move |c, _| c.get(&site).header("host", "bench.example.com"));
        run("app GET / (routed by Host)", clients, duration, app_hit).await;

        if full {
            for (name, rps) in [
                ("read", read_rps),
                ("write", write_rps),
                ("cloudflare write", cf_rps),
            ] {
                println!(
                    "{name}: {}",
                    if rps >= 1000.0 {
                        "meets 1,000 req/s"
                    } else {
                        "BELOW 1,000 req/s"
                    }
                );
            }
        }
        handle.shutdown().await.unwrap();
    });
}
