//! The queue page over 20,000 open tasks on SQLite (the target:
//! server time p95 ≤ 100 ms): the whole request through the router —
//! session check, the desk's query of the open-work index, the count per
//! queue and the bulk count, the template — for the first page, a filtered
//! page and a page deep in the list. Prints p50/p95 per page besides
//! criterion's estimate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use collect_web::{Auth, Role, router};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

const TASKS: usize = 20_000;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let host = common::host(dir.path(), TASKS);
    let config = common::local(Role::Admin);
    let Auth::LocalToken { token, .. } = &config.auth else {
        unreachable!()
    };
    let token = token.clone();
    let app = router(host, config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cookie = rt.block_on(async {
        let r = app
            .clone()
            .oneshot(
                Request::get(format!("/?token={token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let c = r.headers()[header::SET_COOKIE].to_str().unwrap();
        c.split(';').next().unwrap().to_string()
    });
    let page = |uri: &str| {
        let app = app.clone();
        let req = Request::get(uri)
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap();
        rt.block_on(async move {
            let r = app.oneshot(req).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            to_bytes(r.into_body(), usize::MAX).await.unwrap().len()
        })
    };
    // Where the time goes: opening the connection and reading the index.
    {
        use collect_delivery::ledger::Ledger as _;
        let db = dir.path().join("collect.db");
        let t = Instant::now();
        let store = collect_sqlite::store::SqliteStore::open(&db).unwrap();
        let opened = t.elapsed();
        let t = Instant::now();
        let n = pollster::block_on(store.open_work(None)).unwrap().len();
        println!(
            "open a connection {:.1} ms; open_work(None) of {n} entries {:.1} ms",
            opened.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let mut group = c.benchmark_group("queue_page_20000_tasks");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    for (name, uri) in [
        ("first_page", "/"),
        (
            "filtered",
            "/?kind=approval&segment=high_risk&min_balance=1000&sort=balance",
        ),
        ("page_200", "/?page=200"),
    ] {
        // p50 / p95 over 100 requests, for BENCHMARKS.md.
        let mut times: Vec<Duration> = (0..100)
            .map(|_| {
                let t = Instant::now();
                page(uri);
                t.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "queue page {name} ({uri}) over {TASKS} open tasks: p50 {:.1} ms, p95 {:.1} ms",
            times[49].as_secs_f64() * 1e3,
            times[94].as_secs_f64() * 1e3
        );
        group.bench_function(name, |b| b.iter(|| page(uri)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
