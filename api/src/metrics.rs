//! Prometheus metrics: one registry per server, rendered at `/metrics`.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// Prometheus metrics, one registry per server.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub pool_connections: IntGauge,
    pub pool_idle: IntGauge,
    pub pool_max: IntGauge,
    pub events: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("ncr".into()), None).expect("registry");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route and method")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route", "method"],
        )
        .expect("metric");
        let pool_connections = IntGauge::new("db_pool_connections", "Open database connections").expect("metric");
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Idle database connections").expect("metric");
        let pool_max = IntGauge::new("db_pool_max_connections", "Configured pool size").expect("metric");
        let events =
            IntCounterVec::new(Opts::new("events_total", "Business events by kind and outcome"), &["kind", "outcome"])
                .expect("metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_max.clone()),
            Box::new(events.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Self { registry, requests, latency, pool_connections, pool_idle, pool_max, events }
    }

    /// Counts a business event (payment verified, SMS sent, …).
    pub fn event(&self, kind: &str, outcome: &str) {
        self.events.with_label_values(&[kind, outcome]).inc();
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The `/metrics` body, with the pool gauges of `db` refreshed.
    pub fn render_with_pool(&self, db: &persistence::Db) -> String {
        let (open, idle) = db.pool_state();
        self.pool_connections.set(i64::from(open));
        self.pool_idle.set(i64::from(idle));
        self.pool_max.set(i64::from(db.max_connections()));
        let mut out = self.render();
        // Read from the pool's own counters (docs/operating.md, "Database cost per journey").
        let c = db.counts();
        for (name, help, value) in [
            ("ncr_db_statements_total", "Statements sent to the database, BEGIN and COMMIT included", c.statements),
            (
                "ncr_db_transaction_control_total",
                "Of the statements, BEGIN, COMMIT, ROLLBACK and savepoints",
                c.control,
            ),
            ("ncr_db_transactions_total", "Transactions begun (autocommit statements not counted)", c.transactions),
            ("ncr_db_rollbacks_total", "Transactions rolled back", c.rollbacks),
            (
                "ncr_db_turns_total",
                "Turns at the database: pooled connections taken, each used on a blocking thread",
                c.turns,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
        }
        out
    }
}
