//! What operators watch: a request id and one JSON log line per request, and `/metrics` in
//! Prometheus text format (latency histograms and error counts by route from memory, security
//! event totals from the database).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Status};
use rocket::{Data, Request, Response};
use serde::Serialize;

use crate::config::Config;
use crate::crypto;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteStats {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    server_errors: u64,
    unavailable: u64,
}

/// Per-route request statistics of this instance.
#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    fn observe(&self, route: &str, seconds: f64, status: Status) {
        let mut routes = crate::sync::lock(&self.routes);
        let stats = routes.entry(route.to_owned()).or_default();
        for (bucket, bound) in stats.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        stats.count += 1;
        stats.sum += seconds;
        match status.code {
            503 => stats.unavailable += 1,
            500..=599 => stats.server_errors += 1,
            _ => {}
        }
    }

    pub fn render(&self, out: &mut String) {
        let routes = crate::sync::lock(&self.routes);
        out.push_str("# HELP doorman_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE doorman_http_request_duration_seconds histogram\n");
        for (route, s) in routes.iter() {
            for (count, bound) in s.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "doorman_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "doorman_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "doorman_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "doorman_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP doorman_http_unavailable_total 503 answers (database unreachable or full, logins queued too long).\n");
        out.push_str("# TYPE doorman_http_unavailable_total counter\n");
        for (route, s) in routes.iter() {
            let _ = writeln!(
                out,
                "doorman_http_unavailable_total{{route=\"{route}\"}} {}",
                s.unavailable
            );
        }
        out.push_str("# HELP doorman_http_server_errors_total Other 5xx answers.\n");
        out.push_str("# TYPE doorman_http_server_errors_total counter\n");
        for (route, s) in routes.iter() {
            let _ = writeln!(
                out,
                "doorman_http_server_errors_total{{route=\"{route}\"}} {}",
                s.server_errors
            );
        }
    }
}

/// The request's id (also sent as `X-Request-Id`) and when it arrived.
struct Arrival {
    id: String,
    at: Instant,
}

/// One line of the request log.
#[derive(Serialize)]
struct RequestLine<'a> {
    request_id: &'a str,
    method: &'a str,
    route: &'a str,
    status: u16,
    ms: f64,
    ip: Option<std::net::IpAddr>,
}

/// How long request log lines may wait to be written together.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// Past this much waiting text the request that adds to it writes it out itself.
const MAX_PENDING: usize = 256 * 1024;

/// Request log lines written in batches: a request only appends its line under a lock; a thread
/// writes what gathered to standard output every [`FLUSH_EVERY`] in one write, and shutdown
/// writes the rest. (A write per request was about a tenth of a simple page's cost.) A crash
/// loses at most the last [`FLUSH_EVERY`] of request lines; security events are not batched.
#[derive(Default)]
struct RequestLog {
    pending: Mutex<Vec<u8>>,
}

impl RequestLog {
    fn append(&self, line: &[u8]) {
        let mut pending = crate::sync::lock(&self.pending);
        pending.extend_from_slice(line);
        if pending.len() >= MAX_PENDING {
            write_out(&std::mem::take(&mut *pending));
        }
    }

    fn flush(&self) {
        let batch = std::mem::take(&mut *crate::sync::lock(&self.pending));
        write_out(&batch);
    }

    /// Flushes every [`FLUSH_EVERY`] on a thread of its own, until the log is dropped.
    fn start(log: &Arc<RequestLog>) {
        let log = Arc::downgrade(log);
        let spawned = std::thread::Builder::new()
            .name("doorman-request-log".into())
            .spawn(move || {
                while let Some(log) = log.upgrade() {
                    log.flush();
                    drop(log);
                    std::thread::sleep(FLUSH_EVERY);
                }
            });
        if let Err(e) = spawned {
            eprintln!("doorman: request log thread: {e}");
        }
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        self.flush();
    }
}

fn write_out(batch: &[u8]) {
    if !batch.is_empty() {
        let _ = std::io::stdout().lock().write_all(batch);
    }
}

/// The fairing. Request ids are a random prefix chosen at start and a counter: unique across
/// restarts and instances without a random draw per request.
pub struct Observe {
    prefix: String,
    next: AtomicU64,
    log: Arc<RequestLog>,
}

impl Observe {
    pub fn new() -> Observe {
        let log = Arc::new(RequestLog::default());
        RequestLog::start(&log);
        Observe {
            prefix: crypto::random_token::<6>(),
            next: AtomicU64::new(0),
            log,
        }
    }
}

impl Default for Observe {
    fn default() -> Observe {
        Observe::new()
    }
}

#[rocket::async_trait]
impl Fairing for Observe {
    fn info(&self) -> Info {
        Info {
            name: "request log and metrics",
            kind: Kind::Request | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_shutdown(&self, _: &rocket::Rocket<rocket::Orbit>) {
        self.log.flush();
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        req.local_cache(|| Arrival {
            id: format!("{}.{n:x}", self.prefix),
            at: Instant::now(),
        });
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let arrival = req.local_cache(|| Arrival {
            id: String::new(),
            at: Instant::now(),
        });
        let seconds = arrival.at.elapsed().as_secs_f64();
        // The route's pattern, never the concrete path: ids and queries stay out of labels.
        let route = req.route().map_or("unmatched", |r| r.uri.path());
        if let Some(metrics) = req.rocket().state::<Metrics>() {
            metrics.observe(route, seconds, res.status());
        }
        res.set_header(Header::new("X-Request-Id", arrival.id.clone()));
        if req
            .rocket()
            .state::<Config>()
            .is_some_and(|c| c.log_requests)
        {
            let line = RequestLine {
                request_id: &arrival.id,
                method: req.method().as_str(),
                route,
                status: res.status().code,
                ms: (seconds * 1000.0 * 100.0).round() / 100.0,
                ip: req.client_ip(),
            };
            if let Ok(mut text) = serde_json::to_vec(&line) {
                text.push(b'\n');
                self.log.append(&text);
            }
        }
    }
}
