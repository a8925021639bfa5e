//! A repeatable, cluster-free measurement of the control plane at the scale of issue #9:
//! 10k Ingresses (one host, two paths each) with their Services and EndpointSlices, shaped as
//! `tests/bench/scale.rs` creates them. Ignored by default; run in release:
//!
//! `cargo test --release -p sluice-dataplane --lib scale_ -- --ignored --nocapture`
//!
//! It prints the full translation time, the per-change cost of the generator's publishing step
//! and the heap the mirror and the snapshot hold.

use std::time::Instant;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use serde_json::{Value, json};

use super::*;

const NS: &str = "scale";
const CLASS: &str = "scale";

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("test object")
}

/// Metadata as the API server returns it (uid, resourceVersion, creationTimestamp, and the
/// managedFields the strip functions drop).
fn meta(name: &str, rv: u64, created: u64) -> Value {
    json!({
        "name": name, "namespace": NS, "uid": format!("00000000-0000-0000-0000-{rv:012}"),
        "resourceVersion": rv.to_string(), "generation": 1,
        "creationTimestamp": format!("2025-01-01T{:02}:{:02}:{:02}Z", created / 3600 % 24, created / 60 % 60, created % 60),
        "managedFields": [{"manager": "sluice-scale-bench", "operation": "Update",
            "apiVersion": "v1", "time": "2025-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:rules": {}}}}]
    })
}

/// The k-th change of the measurements, at resourceVersion `rv`: an even k adds a path
/// (`{path}{k}`) to an existing Ingress, an odd k creates `new{k}` on a host of its own.
/// Returns the changed Ingress's name, as the watch event would carry it.
fn scale_change(state: &mut ClusterState, k: usize, n: usize, rv: u64, path: &str) -> String {
    if k.is_multiple_of(2) {
        let j = (k * 7919) % n;
        state.upsert_ingress(scale_ingress(
            j,
            (j + 1) % n,
            rv,
            Some(&format!("{path}{k}")),
        ));
        format!("i{j}")
    } else {
        let mut new = scale_ingress(k % n, k % n, rv, None);
        new.metadata.name = Some(format!("new{k}"));
        let rules = new.spec.as_mut().and_then(|s| s.rules.as_mut());
        if let Some(rule) = rules.and_then(|r| r.first_mut()) {
            rule.host = Some(format!("new{k}.scale.test"));
        }
        state.upsert_ingress(new);
        format!("new{k}")
    }
}

pub(crate) fn scale_ingress(i: usize, b: usize, rv: u64, extra_path: Option<&str>) -> Ingress {
    let path = |p: &str, svc: usize| {
        json!({"path": p, "pathType": "Prefix",
               "backend": {"service": {"name": format!("s{svc}"), "port": {"number": 80}}}})
    };
    let mut paths = vec![path("/a", i), path("/b", b)];
    if let Some(p) = extra_path {
        paths.push(path(p, i));
    }
    from_json(json!({
        "metadata": meta(&format!("i{i}"), rv, i as u64),
        "spec": {"ingressClassName": CLASS,
                 "rules": [{"host": format!("h{i}.scale.test"), "http": {"paths": paths}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.250.0.1"}]}}
    }))
}

pub(crate) fn scale_state(n: usize) -> (ClusterState, ClassScope) {
    let mut state = ClusterState::default();
    state.upsert_ingress_class(from_json::<IngressClass>(json!({
        "metadata": {"name": CLASS, "resourceVersion": "1"},
        "spec": {"controller": CONTROLLER_NAME, "parameters": {"apiGroup": "sluice.dev",
            "kind": "IngressControllerSet", "name": "fleet", "namespace": NS, "scope": "Namespace"}}
    })));
    let mut rv = 10;
    let (mut at, _) = heap();
    let mut phase = |what: &str| {
        let (now, _) = heap();
        println!("  {what}: heap {:.1} MiB", mib(now.saturating_sub(at)));
        at = now;
    };
    for i in 0..n {
        rv += 1;
        state.upsert_service(from_json::<Service>(json!({
            "metadata": meta(&format!("s{i}"), rv, 0),
            "spec": {"type": "ClusterIP", "clusterIP": format!("10.96.{}.{}", i / 250, i % 250 + 1),
                     "clusterIPs": [format!("10.96.{}.{}", i / 250, i % 250 + 1)],
                     "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8000, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        })));
    }
    phase("Services");
    for i in 0..n {
        rv += 1;
        let mut m = meta(&format!("s{i}-1"), rv, 0);
        m["labels"] = json!({"kubernetes.io/service-name": format!("s{i}")});
        state.upsert_endpoint_slice(from_json::<EndpointSlice>(json!({
            "metadata": m,
            "addressType": "IPv4",
            "endpoints": [{"addresses": [format!("10.244.{}.{}", 128 + i / 250, 2 + i % 250)],
                           "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}]
        })));
    }
    phase("EndpointSlices");
    for i in 0..n {
        rv += 1;
        state.upsert_ingress(scale_ingress(i, (i + 1) % n, rv, None));
    }
    phase("Ingresses");
    (state, ClassScope::new(CLASS, NS, "fleet"))
}

/// glibc's view of the heap: bytes in use (small and mmapped chunks) and held from the OS.
pub(crate) fn heap() -> (usize, usize) {
    #[repr(C)]
    #[derive(Default)]
    struct Mallinfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    unsafe extern "C" {
        fn mallinfo2() -> Mallinfo2;
    }
    // SAFETY: glibc's mallinfo2 takes no arguments and returns a plain struct.
    let info = unsafe { mallinfo2() };
    (info.uordblks + info.hblkhd, info.arena + info.hblkhd)
}

pub(crate) fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Asks glibc to give free pages back to the OS (what RSS would be without its retention).
pub(crate) fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim only returns free pages to the OS.
    unsafe { malloc_trim(0) };
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn scale_translate_10k() {
    let n: usize = std::env::var("SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (heap0, _) = heap();
    let t = Instant::now();
    let (mut state, scope) = scale_state(n);
    let (heap1, _) = heap();
    println!(
        "state: {n} Ingresses/Services/EndpointSlices built in {:.0} ms; heap {:.1} MiB",
        ms(t),
        mib(heap1 - heap0)
    );
    let t = Instant::now();
    let (snapshot, problems) = translate(&state, &scope);
    let first = ms(t);
    let (heap2, _) = heap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(snapshot.exact_hosts.len(), n);
    println!(
        "full translation: {first:.1} ms (first); snapshot heap {:.1} MiB",
        mib(heap2 - heap1)
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = translate(&state, &scope);
        times.push(ms(t));
        drop(out);
    }
    println!("full translation again: {times:.1?} ms");
    let t = Instant::now();
    drop(snapshot);
    println!("dropping a snapshot: {:.1} ms", ms(t));

    // Changes as the bench makes them: edits adding a path, creates of a new Ingress.
    let mut rv = 1_000_000;
    let mut times = Vec::new();
    for k in 0..20 {
        rv += 1;
        let j = (k * 7919) % n;
        state.upsert_ingress(scale_ingress(j, (j + 1) % n, rv, Some(&format!("/c{k}"))));
        let t = Instant::now();
        let out = translate(&state, &scope);
        times.push(ms(t));
        drop(out);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "per change (full translation): median {:.1} ms, max {:.1} ms",
        times[times.len() / 2],
        times[times.len() - 1]
    );

    // The incremental translator, as the generator uses it.
    let mut translator = Translator::new();
    let (heap3, _) = heap();
    let t = Instant::now();
    let (first, _) = translator.translate(&state, &scope);
    let (heap4, _) = heap();
    println!(
        "incremental translator, first call: {:.1} ms; heap of its snapshot and what it keeps {:.1} MiB",
        ms(t),
        mib(heap4.saturating_sub(heap3))
    );
    let mut previous = std::sync::Arc::new(first);
    let mut times = Vec::new();
    let mut parts = [0.0; 3];
    for k in 0..200 {
        rv += 1;
        let t = Instant::now();
        let name = scale_change(&mut state, k, n, rv, "/d");
        let t1 = Instant::now();
        // The generator names the changed keys, from the watch events.
        let mut changes = Changes::none();
        Changes::note(&mut changes.ingresses, &ObjectKey::new(NS, name));
        let (snapshot, problems) = translator.translate_changes(&state, &scope, &changes);
        parts[0] += ms(t1);
        assert!(problems.is_empty());
        // What the generator then does: compare with the current snapshot, swap, drop the old.
        let t1 = Instant::now();
        let same = *previous == snapshot;
        parts[1] += ms(t1);
        assert!(!same);
        let t1 = Instant::now();
        previous = std::sync::Arc::new(snapshot);
        parts[2] += ms(t1);
        times.push(ms(t));
    }
    println!(
        "  of which translate {:.2} ms, compare {:.2} ms, drop {:.2} ms (means)",
        parts[0] / 200.0,
        parts[1] / 200.0,
        parts[2] / 200.0
    );
    let (full, _) = translate(&state, &scope);
    assert!(
        *previous == full,
        "incremental and full translations differ"
    );
    times.sort_by(f64::total_cmp);
    println!(
        "per change (incremental, with compare and swap): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
    println!("RSS {:.1} MiB", rss_mib());
    let (in_use, held) = heap();
    println!(
        "heap in use {:.1} MiB, held {:.1} MiB",
        mib(in_use),
        mib(held)
    );
    trim();
    println!("RSS after malloc_trim {:.1} MiB", rss_mib());
}

#[test]
#[ignore = "a measurement"]
fn scale_sizes() {
    use std::mem::size_of;
    println!(
        "Ingress {} ObjectMeta {} Service {} ServiceSpec {} EndpointSlice {} Endpoint {} HostRoutes {} Route {}",
        size_of::<Ingress>(),
        size_of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(),
        size_of::<Service>(),
        size_of::<k8s_openapi::api::core::v1::ServiceSpec>(),
        size_of::<EndpointSlice>(),
        size_of::<k8s_openapi::api::discovery::v1::Endpoint>(),
        size_of::<crate::model::HostRoutes>(),
        size_of::<crate::model::Route>(),
    );
}

/// The generator's pattern after sync: every Ingress's status write echoed back (a new
/// resourceVersion each), then 1000 changes, translated in batches on another thread as on the
/// blocking pool. Prints the heap in use against RSS, to tell live growth from fragmentation.
#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn scale_status_echo_10k() {
    let n = 10_000;
    let (mut state, scope) = scale_state(n);
    let mut translator = Translator::new();
    let (first, _) = translator.translate(&state, &scope);
    let mut previous = std::sync::Arc::new(first);
    let report = |what: &str| {
        let (in_use, held) = heap();
        println!(
            "{what}: heap in use {:.1} MiB, held {:.1} MiB, RSS {:.1} MiB",
            mib(in_use),
            mib(held),
            rss_mib()
        );
    };
    report("after sync");
    let mut rv = 2_000_000;
    let run = |state: &ClusterState, translator: &mut Translator, changes: Changes| {
        std::thread::scope(|s| {
            s.spawn(|| translator.translate_changes(state, &scope, &changes))
                .join()
                .expect("translation")
        })
    };
    for batch in 0..100 {
        let mut changes = Changes::none();
        for i in batch * 100..(batch + 1) * 100 {
            rv += 1;
            state.upsert_ingress(scale_ingress(i, (i + 1) % n, rv, None));
            Changes::note(&mut changes.ingresses, &ObjectKey::new(NS, format!("i{i}")));
        }
        previous = std::sync::Arc::new(run(&state, &mut translator, changes).0);
    }
    report("after 10k status echoes");
    for k in 0..1000 {
        rv += 1;
        let name = scale_change(&mut state, k, n, rv, "/e");
        let mut changes = Changes::none();
        Changes::note(&mut changes.ingresses, &ObjectKey::new(NS, name));
        previous = std::sync::Arc::new(run(&state, &mut translator, changes).0);
    }
    report("after 1000 changes");
    drop(previous);
    trim();
    report("after malloc_trim");
}
