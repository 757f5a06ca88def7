//! A small Prometheus registry: per-operation latency histograms and error
//! counters for the plugin servers, rendered in the text exposition format.
//!
//! The servers record into [`global`]; `kuryr` serves it on
//! `[DEFAULT] metrics_address`. Hand-written to keep the dependency tree
//! small: three metric families do not need a client library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Histogram bucket upper bounds, seconds (from 1 ms: Kuryr's calls are
/// milliseconds, not upstream's 10 s buckets).
pub const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Latency of each served call, labelled `operation`.
pub const OPERATION_DURATION: &str = "kuryr_operation_duration_seconds";
/// Failed calls, labelled `operation` and `kind`.
pub const OPERATION_ERRORS: &str = "kuryr_operation_errors_total";
/// Neutron replies, labelled `method` and `status`.
pub const NEUTRON_REQUESTS: &str = "kuryr_neutron_requests_total";
/// Ready ports of each port pool, labelled `network_id` and `subnet_id`.
pub const POOL_READY_PORTS: &str = "kuryr_port_pool_ready_ports";

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the `+Inf` overflow is `count - sum(buckets)`.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct Inner {
    durations: BTreeMap<String, Histogram>,
    errors: BTreeMap<(String, String), u64>,
    /// (network id, subnet id) → ready ports.
    pools: BTreeMap<(String, String), usize>,
}

/// Operation latencies and errors. Cheap to record into from many tasks.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// The process-wide registry the servers record into.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::default)
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one call of `operation` that took `elapsed`, and when it
    /// failed, its error `kind` (an HTTP status class or a CNI code).
    pub fn observe(&self, operation: &str, elapsed: Duration, error_kind: Option<&str>) {
        let mut inner = self.lock();
        inner.durations.entry(operation.to_owned()).or_default().observe(elapsed.as_secs_f64());
        if let Some(kind) = error_kind {
            *inner.errors.entry((operation.to_owned(), kind.to_owned())).or_default() += 1;
        }
    }

    /// Records the number of ready ports of a port pool.
    pub fn set_pool_size(&self, network_id: &str, subnet_id: &str, ready: usize) {
        self.lock().pools.insert((network_id.to_owned(), subnet_id.to_owned()), ready);
    }

    /// Forgets a deleted pool.
    pub fn remove_pool_size(&self, network_id: &str, subnet_id: &str) {
        self.lock().pools.remove(&(network_id.to_owned(), subnet_id.to_owned()));
    }

    /// The Prometheus text exposition of these metrics plus Neutron reply
    /// counts given as `(method, status, count)`.
    pub fn render(&self, neutron: &[(String, u16, u64)]) -> String {
        let inner = self.lock();
        let mut out = Exposition::default();
        out.family(OPERATION_DURATION, "histogram", "Time to serve a plugin call, by operation.");
        let (bucket, sum, count) = (
            format!("{OPERATION_DURATION}_bucket"),
            format!("{OPERATION_DURATION}_sum"),
            format!("{OPERATION_DURATION}_count"),
        );
        for (operation, h) in &inner.durations {
            let op = ("operation", operation.as_str());
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                out.sample(&bucket, &[op, ("le", &bound.to_string())], cumulative);
            }
            out.sample(&bucket, &[op, ("le", "+Inf")], h.count);
            out.sample(&sum, &[op], h.sum);
            out.sample(&count, &[op], h.count);
        }
        out.family(
            OPERATION_ERRORS,
            "counter",
            "Failed plugin calls, by operation and kind (HTTP status class or CNI error code).",
        );
        for ((operation, kind), n) in &inner.errors {
            out.sample(OPERATION_ERRORS, &[("operation", operation), ("kind", kind)], n);
        }
        out.family(
            NEUTRON_REQUESTS,
            "counter",
            "Neutron replies received, by method and HTTP status (retries included).",
        );
        for (method, status, n) in neutron {
            let status = status.to_string();
            out.sample(NEUTRON_REQUESTS, &[("method", method), ("status", &status)], n);
        }
        out.family(POOL_READY_PORTS, "gauge", "Pre-plugged ports ready in each port pool.");
        for ((network, subnet), n) in &inner.pools {
            let labels = [("network_id", network.as_str()), ("subnet_id", subnet.as_str())];
            out.sample(POOL_READY_PORTS, &labels, n);
        }
        out.0
    }

    /// The value of the first sample whose line starts with `prefix` (a
    /// metric name with its labels), 0 when there is none yet.
    pub fn sample(&self, prefix: &str) -> f64 {
        self.render(&[])
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters that are still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `kind` label of a failed HTTP reply: `4xx` or `5xx`.
pub fn status_class(status: u16) -> String {
    format!("{}xx", status / 100)
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The text exposition format being written.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    /// A metric family's `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample: `name{label="value",...} value`, label values escaped.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> =
            labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let _ = writeln!(self.0, "{name}{{{}}} {value}", labels.join(","));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        m.observe("CreateEndpoint", Duration::from_micros(500), None);
        m.observe("CreateEndpoint", Duration::from_millis(30), None);
        m.observe("CreateEndpoint", Duration::from_secs(60), Some("5xx"));
        let text = m.render(&[]);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} missing in\n{text}"))
                .to_owned()
        };
        assert_eq!(
            line("kuryr_operation_duration_seconds_bucket{operation=\"CreateEndpoint\",le=\"0.001\"}"),
            "kuryr_operation_duration_seconds_bucket{operation=\"CreateEndpoint\",le=\"0.001\"} 1"
        );
        assert!(line(
            "kuryr_operation_duration_seconds_bucket{operation=\"CreateEndpoint\",le=\"0.05\"}"
        )
        .ends_with(" 2"));
        assert!(line(
            "kuryr_operation_duration_seconds_bucket{operation=\"CreateEndpoint\",le=\"30\"}"
        )
        .ends_with(" 2"));
        assert!(line(
            "kuryr_operation_duration_seconds_bucket{operation=\"CreateEndpoint\",le=\"+Inf\"}"
        )
        .ends_with(" 3"));
        assert!(line("kuryr_operation_duration_seconds_count{operation=\"CreateEndpoint\"}")
            .ends_with(" 3"));
        assert_eq!(
            line("kuryr_operation_errors_total{"),
            "kuryr_operation_errors_total{operation=\"CreateEndpoint\",kind=\"5xx\"} 1"
        );
    }

    #[test]
    fn neutron_counts_and_types() {
        let text = Metrics::new().render(&[("POST".into(), 201, 4), ("GET".into(), 404, 1)]);
        assert!(text.contains("# TYPE kuryr_operation_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE kuryr_operation_errors_total counter\n"));
        assert!(text.contains("kuryr_neutron_requests_total{method=\"POST\",status=\"201\"} 4\n"));
        assert!(text.contains("kuryr_neutron_requests_total{method=\"GET\",status=\"404\"} 1\n"));
    }

    #[test]
    fn pool_sizes_are_a_gauge() {
        let m = Metrics::new();
        m.set_pool_size("n1", "s1", 3);
        m.set_pool_size("n1", "s1", 2);
        m.set_pool_size("n2", "s2", 5);
        m.remove_pool_size("n2", "s2");
        let text = m.render(&[]);
        assert!(text.contains("# TYPE kuryr_port_pool_ready_ports gauge\n"));
        assert!(
            text.contains("kuryr_port_pool_ready_ports{network_id=\"n1\",subnet_id=\"s1\"} 2\n")
        );
        assert!(!text.contains("n2"), "{text}");
    }

    #[test]
    fn labels_are_escaped_and_classes_named() {
        let m = Metrics::new();
        m.observe("a\"b\\c", Duration::ZERO, Some("x\ny"));
        let text = m.render(&[]);
        assert!(text.contains("operation=\"a\\\"b\\\\c\",kind=\"x\\ny\""), "{text}");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(500), "5xx");
    }
}
