//! The load-test engine behind the `loadtest` binary (issue 11) and its smoke test: it
//! drives the real HTTP API the way the black-box tests and a browser do, with many
//! concurrent clients, and measures every endpoint in an HDR histogram.
//!
//! Scenarios:
//! - `journey`: captcha → entry → personal information → special needs → availability →
//!   hold → payment through the sandbox bank's form → callback → receipt JSON, one
//!   distinct synthetic citizen per journey;
//! - `search`: anonymous availability searches over random cities and dates;
//! - `rush`: `clients` citizens (drafted first, not measured) press "hold" at the same
//!   instant for `seats` seats of one office/date/shift; the winners pay; then the database
//!   must hold exactly `seats` bookings and the slot's counter must agree;
//! - `status`: public status lookups by national code and tracking code, of citizens who
//!   registered in an unmeasured preparation phase (at most 19 lookups each: the limit is 20
//!   a day).
//!
//! Citizens come from [`api::seed::loadtest::citizen`]: the server's registry must hold
//! them (`ncr seed-loadtest`, or [`api::seed::loadtest::seed_citizens`] in a test).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use hdrhistogram::Histogram;
use persistence::registry::PersonRow;
use regex::Regex;
use serde_json::{Value, json};

/// Write requests (POST/PUT) of one journey: entry, personal information, special needs,
/// hold, payment, the bank's button, the callback.
pub const JOURNEY_WRITES: u64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Journey,
    Search,
    Rush,
    Status,
}

impl Scenario {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "journey" => Self::Journey,
            "search" => Self::Search,
            "rush" => Self::Rush,
            "status" => Self::Status,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Journey => "journey",
            Self::Search => "search",
            Self::Rush => "rush",
            Self::Status => "status",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// e.g. `http://127.0.0.1:8080`.
    pub base: String,
    pub scenario: Scenario,
    /// Concurrent clients (for `rush`: of the unmeasured preparation).
    pub concurrency: usize,
    /// Stop after this long …
    pub duration: Option<Duration>,
    /// … or after this many journeys / searches / lookups (for `rush`: clients).
    pub count: Option<u64>,
    /// `journey`: run journeys this long first, unmeasured — a server just started runs
    /// its start-up jobs (slots for the booking horizon of every office) and opens its
    /// connections meanwhile, which are not what a journey costs.
    pub warmup: Option<Duration>,
    /// Index of the first load-test citizen this run may use; each run needs its own range.
    pub first_citizen: u64,
    /// The server's Tehran date ("today"); searches and holds are from tomorrow on.
    pub today: NaiveDate,
    /// Searches and holds stay within this many days ahead (below the booking horizon).
    pub horizon_days: i64,
    /// Area codes of cities that have offices.
    pub city_codes: Vec<String>,
    /// `rush`: the seats the clients compete for.
    pub seats: u32,
    /// The server's process, for its peak RSS (VmHWM).
    pub server_pid: Option<u32>,
}

/// Latency figures of one endpoint, in milliseconds.
#[derive(Debug, Clone)]
pub struct EndpointFigures {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// What `rush` found in the database afterwards.
#[derive(Debug, Clone)]
pub struct RushCheck {
    pub office_id: String,
    pub date: NaiveDate,
    pub shift: String,
    pub winners: u64,
    pub losers: u64,
    /// Winners that paid.
    pub paid: u64,
    /// Winners whose own application (read with their own token) shows the contested
    /// seat, booked.
    pub winners_holding: u64,
    /// Applications on the slot, held or booked (earlier runs' included).
    pub bookings_in_db: i64,
    /// Of those, still only held (unpaid) …
    pub held_in_db: i64,
    /// … and booked.
    pub booked_in_db: i64,
    /// Applications on the slot that are neither a winner's nor there before the rush.
    pub strangers: i64,
    /// Seats of the slot already taken before the rush (by earlier runs).
    pub taken_before: i32,
    pub capacity: i32,
    pub taken: i32,
    pub ok: bool,
    /// Why not, when not.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: Scenario,
    pub elapsed: Duration,
    pub requests: u64,
    /// Successful POST/PUT requests.
    pub writes: u64,
    pub journeys: u64,
    /// Errors by `endpoint:status` (`io` for transport failures).
    pub errors: BTreeMap<String, u64>,
    /// Expected refusals that are not errors (a hold that lost a race for the last seat).
    pub refusals: BTreeMap<String, u64>,
    pub endpoints: BTreeMap<String, EndpointFigures>,
    pub peak_rss_kb: Option<u64>,
    pub rush: Option<RushCheck>,
    /// What the measured phase cost the server and the database.
    pub costs: Option<Costs>,
    pub notes: Vec<String>,
}

/// What the measured phase of a scenario cost, as deltas between its start and its end:
/// the server's database counters (`ncr_db_*_total` in `/metrics`), the CPU time of the
/// server's process and of the PostgreSQL backends serving its database (from `/proc`),
/// and `pg_stat_statements` when PostgreSQL loads it. Background jobs running meanwhile
/// (the outbox sending the journeys' SMS) are part of the cost.
#[derive(Debug, Clone, Default)]
pub struct Costs {
    /// Every statement sent, `BEGIN`/`COMMIT` included.
    pub statements: Option<u64>,
    /// Of those, `BEGIN`, `COMMIT`, `ROLLBACK` and savepoints.
    pub control: Option<u64>,
    pub transactions: Option<u64>,
    pub rollbacks: Option<u64>,
    /// Turns at the database (`ncr_db_turns_total`): connections taken from the pool, each
    /// a hand-off of the request's database work to a blocking thread and back.
    pub turns: Option<u64>,
    pub server_cpu_ms: Option<f64>,
    pub postgres_cpu_ms: Option<f64>,
    /// Calls counted by `pg_stat_statements` in the server's database.
    pub pg_stat_statements_calls: Option<u64>,
}

impl Costs {
    fn per(v: Option<f64>, n: u64) -> Option<f64> {
        v.filter(|_| n > 0).map(|v| v / n as f64)
    }

    /// The statements that read and write rows: all but the transaction control.
    pub fn work(&self) -> Option<u64> {
        Some(self.statements?.saturating_sub(self.control?))
    }

    pub fn to_json(&self, journeys: u64, requests: u64) -> Value {
        let f = |v: Option<u64>| v.map(|v| v as f64);
        let per = |n: u64| {
            json!({
                "statements": Self::per(f(self.statements), n),
                "work_statements": Self::per(f(self.work()), n),
                "transactions": Self::per(f(self.transactions), n),
                "rollbacks": Self::per(f(self.rollbacks), n),
                "turns": Self::per(f(self.turns), n),
                "server_cpu_ms": Self::per(self.server_cpu_ms, n),
                "postgres_cpu_ms": Self::per(self.postgres_cpu_ms, n),
                "pg_stat_statements_calls": Self::per(f(self.pg_stat_statements_calls), n),
            })
        };
        json!({
            "total": {
                "statements": self.statements, "work_statements": self.work(),
                "transactions": self.transactions, "rollbacks": self.rollbacks, "turns": self.turns,
                "server_cpu_ms": self.server_cpu_ms, "postgres_cpu_ms": self.postgres_cpu_ms,
                "pg_stat_statements_calls": self.pg_stat_statements_calls,
            },
            "per_journey": if journeys > 0 { per(journeys) } else { Value::Null },
            "per_request": if requests > 0 { per(requests) } else { Value::Null },
        })
    }
}

impl Report {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Errors with a 5xx status or no answer at all.
    pub fn server_errors(&self) -> u64 {
        self.errors.iter().filter(|(k, _)| k.ends_with(":io") || k.contains(":5")).map(|(_, v)| v).sum()
    }

    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn journeys_per_s(&self) -> f64 {
        self.journeys as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn writes_per_s(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The worst p99 over all endpoints.
    pub fn worst_p99(&self) -> f64 {
        self.endpoints.values().map(|e| e.p99).fold(0.0, f64::max)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario.as_str(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "requests": self.requests,
            "requests_per_s": self.requests_per_s(),
            "journeys": self.journeys,
            "journeys_per_s": self.journeys_per_s(),
            "writes": self.writes,
            "writes_per_s": self.writes_per_s(),
            "errors": self.errors,
            "error_count": self.error_count(),
            "server_errors": self.server_errors(),
            "refusals": self.refusals,
            "worst_p99_ms": self.worst_p99(),
            "endpoints": self.endpoints.iter().map(|(k, e)| (k.clone(), json!({
                "count": e.count, "p50_ms": e.p50, "p95_ms": e.p95, "p99_ms": e.p99, "max_ms": e.max,
            }))).collect::<serde_json::Map<String, Value>>(),
            "peak_rss_mb": self.peak_rss_kb.map(|k| k as f64 / 1024.0),
            "costs": self.costs.as_ref().map(|c| c.to_json(self.journeys, self.requests)),
            "rush": self.rush.as_ref().map(|r| json!({
                "office_id": r.office_id, "date": r.date, "shift": r.shift, "winners": r.winners,
                "losers": r.losers, "paid": r.paid, "winners_holding": r.winners_holding,
                "bookings_in_db": r.bookings_in_db, "held_in_db": r.held_in_db, "booked_in_db": r.booked_in_db,
                "strangers": r.strangers, "taken_before": r.taken_before, "capacity": r.capacity,
                "taken": r.taken, "ok": r.ok, "problems": r.problems,
            })),
            "notes": self.notes,
        })
    }

    /// A human-readable summary.
    pub fn table(&self) -> String {
        let mut out = format!(
            "scenario {}: {:.1} s, {} requests ({:.0}/s), {} journeys ({:.1}/s), {:.0} writes/s, {} errors\n",
            self.scenario.as_str(),
            self.elapsed.as_secs_f64(),
            self.requests,
            self.requests_per_s(),
            self.journeys,
            self.journeys_per_s(),
            self.writes_per_s(),
            self.error_count()
        );
        out.push_str(&format!(
            "{:<16} {:>8} {:>9} {:>9} {:>9} {:>9}\n",
            "endpoint", "count", "p50 ms", "p95 ms", "p99 ms", "max ms"
        ));
        for (name, e) in &self.endpoints {
            out.push_str(&format!(
                "{:<16} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
                name, e.count, e.p50, e.p95, e.p99, e.max
            ));
        }
        for (k, v) in &self.errors {
            out.push_str(&format!("error {k}: {v}\n"));
        }
        for (k, v) in &self.refusals {
            out.push_str(&format!("refused (expected) {k}: {v}\n"));
        }
        if let Some(kb) = self.peak_rss_kb {
            out.push_str(&format!("server peak RSS: {:.1} MB\n", kb as f64 / 1024.0));
        }
        if let Some(c) = &self.costs {
            let (n, unit) = if self.journeys > 0 { (self.journeys, "journey") } else { (self.requests, "request") };
            let show = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
            out.push_str(&format!(
                "cost per {unit}: {} statements ({} without BEGIN/COMMIT), {} transactions ({} rolled back), {} database turns, server CPU {} ms, PostgreSQL CPU {} ms, pg_stat_statements calls {}\n",
                show(Costs::per(c.statements.map(|v| v as f64), n)),
                show(Costs::per(c.work().map(|v| v as f64), n)),
                show(Costs::per(c.transactions.map(|v| v as f64), n)),
                show(Costs::per(c.rollbacks.map(|v| v as f64), n)),
                show(Costs::per(c.turns.map(|v| v as f64), n)),
                show(Costs::per(c.server_cpu_ms, n)),
                show(Costs::per(c.postgres_cpu_ms, n)),
                show(Costs::per(c.pg_stat_statements_calls.map(|v| v as f64), n)),
            ));
        }
        if let Some(r) = &self.rush {
            out.push_str(&format!(
                "rush {} {} {}: {} winners ({} paid, {} see the seat booked in their own application), {} refused; \
                 in the database {} on the slot ({} held, {} booked, {} from before, {} strangers), capacity {}, taken {} → {}\n",
                r.office_id,
                r.date,
                r.shift,
                r.winners,
                r.paid,
                r.winners_holding,
                r.losers,
                r.bookings_in_db,
                r.held_in_db,
                r.booked_in_db,
                r.taken_before,
                r.strangers,
                r.capacity,
                r.taken,
                if r.ok { "OK" } else { "MISMATCH" }
            ));
            for p in &r.problems {
                out.push_str(&format!("rush problem: {p}\n"));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}

/// The peak resident set (VmHWM, kB) of a process.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) a process used so far, in ms.
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields are counted after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // /proc counts in USER_HZ, 100 per second on Linux whatever the kernel's tick.
    Some((utime + stime) as f64 * 10.0)
}

/// One reading of what [`Costs`] is the difference of.
#[derive(Debug, Default)]
struct CostProbe {
    /// `ncr_db_statements_total`, `…transaction_control…`, `…transactions…`, `…rollbacks…`.
    counters: Option<(u64, u64, u64, u64)>,
    /// `ncr_db_turns_total` (apart: a server from before it counts the others).
    turns: Option<u64>,
    server_cpu_ms: Option<f64>,
    /// CPU ms of each PostgreSQL backend serving the server's database.
    backends: Option<BTreeMap<i32, f64>>,
    pgss_calls: Option<u64>,
    /// The server's own latency histogram of holds (`ncr_http_request_duration_seconds`,
    /// from its request middleware's start to the response it hands back): (upper bound
    /// in seconds, count); `None` when `/metrics` could not be read.
    hold_buckets: Option<Vec<(f64, u64)>>,
}

/// The route whose server-side latency the rush reports beside the clients'.
const HOLD_ROUTE: &str = r#"method="PUT",route="/api/v1/citizen/application/appointment""#;

/// The cumulative buckets of the hold's latency histogram in a `/metrics` text.
fn hold_buckets(metrics: &str) -> Vec<(f64, u64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("ncr_http_request_duration_seconds_bucket{"))
        .filter_map(|l| l.strip_prefix(HOLD_ROUTE))
        .filter_map(|l| {
            let (le, count) = l.strip_prefix(",le=\"")?.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// "server-side p50 ≤ 25 ms, p99 ≤ 100 ms": the bucket bounds that hold half and 99 % of
/// the holds between two probes (the histogram's buckets, so bounds, not exact figures).
/// Nothing when a probe could not read `/metrics`, when no hold was counted between them,
/// or when a count went down (the server restarted): no figure rather than a wrong one.
fn server_side_holds(before: Option<&[(f64, u64)]>, after: Option<&[(f64, u64)]>) -> Option<String> {
    let (before, after) = (before?, after?);
    let earlier = |le: f64| before.iter().find(|(b, _)| *b == le).map_or(0, |(_, m)| *m);
    if after.iter().any(|(le, n)| *n < earlier(*le)) || before.iter().any(|(le, _)| !after.iter().any(|(a, _)| a == le))
    {
        return None;
    }
    let delta: Vec<(f64, u64)> = after.iter().map(|(le, n)| (*le, n - earlier(*le))).collect();
    let total = delta.last().map(|(_, n)| *n).filter(|n| *n > 0)?;
    let within = |q: f64| delta.iter().find(|(_, n)| *n as f64 >= q * total as f64).map(|(le, _)| le * 1000.0);
    Some(format!(
        "server-side (its histogram: middleware entry → response ready) {total} holds, p50 ≤ {} ms, p99 ≤ {} ms",
        within(0.50)?,
        within(0.99)?
    ))
}

/// The `application_name` of the load generator's own PostgreSQL connections, so that
/// they are not counted as the server's.
pub const LOADTEST_APPLICATION_NAME: &str = "ncr-loadtest";

#[derive(diesel::QueryableByName)]
struct PidRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

#[derive(diesel::QueryableByName)]
struct CallsRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    calls: i64,
}

impl CostProbe {
    async fn take(http: &reqwest::Client, base: &str, opts: &Options, db: Option<&persistence::Db>) -> Self {
        let fetched = async { http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok() }.await;
        let hold_buckets = fetched.as_deref().map(hold_buckets);
        let text = fetched.unwrap_or_default();
        let read =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<u64>().ok());
        let counters = (|| {
            Some((
                read("ncr_db_statements_total")?,
                read("ncr_db_transaction_control_total")?,
                read("ncr_db_transactions_total")?,
                read("ncr_db_rollbacks_total")?,
            ))
        })();
        let (backends, pgss_calls) = match db.filter(|d| d.backend() == persistence::Backend::Postgres) {
            Some(db) => {
                let db = db.clone();
                tokio::task::spawn_blocking(move || {
                    use diesel::RunQueryDsl;
                    let Ok(mut conn) = db.get() else { return (None, None) };
                    let pids = diesel::sql_query(format!(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                         AND backend_type = 'client backend' AND application_name <> '{LOADTEST_APPLICATION_NAME}'"
                    ))
                    .load::<PidRow>(&mut conn)
                    .ok()
                    .map(|rows| {
                        rows.into_iter().filter_map(|r| Some((r.pid, cpu_ms(u32::try_from(r.pid).ok()?)?))).collect()
                    });
                    // Only when PostgreSQL loads it (`shared_preload_libraries`) and the
                    // extension is created in this database; otherwise the query fails.
                    let calls = diesel::sql_query(
                        "SELECT coalesce(sum(calls), 0)::bigint AS calls FROM pg_stat_statements \
                         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    )
                    .get_result::<CallsRow>(&mut conn)
                    .ok()
                    .map(|r| r.calls as u64);
                    (pids, calls)
                })
                .await
                .unwrap_or((None, None))
            }
            None => (None, None),
        };
        let turns = read("ncr_db_turns_total");
        Self { counters, turns, server_cpu_ms: opts.server_pid.and_then(cpu_ms), backends, pgss_calls, hold_buckets }
    }

    /// The costs between `self` (taken at the start) and `end`. A backend that appeared
    /// meanwhile (a new pooled connection) counts from zero.
    fn until(&self, end: &CostProbe) -> Costs {
        let d = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        let c = |f: fn(&(u64, u64, u64, u64)) -> u64| d(self.counters.as_ref().map(f), end.counters.as_ref().map(f));
        Costs {
            statements: c(|t| t.0),
            control: c(|t| t.1),
            transactions: c(|t| t.2),
            rollbacks: c(|t| t.3),
            turns: d(self.turns, end.turns),
            server_cpu_ms: self.server_cpu_ms.zip(end.server_cpu_ms).map(|(a, b)| (b - a).max(0.0)),
            postgres_cpu_ms: self
                .backends
                .as_ref()
                .zip(end.backends.as_ref())
                .map(|(a, b)| b.iter().map(|(pid, ms)| (ms - a.get(pid).copied().unwrap_or(0.0)).max(0.0)).sum()),
            pg_stat_statements_calls: d(self.pgss_calls, end.pgss_calls),
        }
    }
}

// ---------------------------------------------------------------- measuring

/// What one client saw. Latencies are kept as plain samples and put into histograms only
/// for the report: a histogram of these bounds is ~150 KB, and a rush has a thousand
/// clients whose figures are merged while the others still wait for their answers — the
/// load generator, on the machine it measures, would spend the rush's CPU zeroing and
/// adding them.
#[derive(Default)]
struct Stats {
    /// Microseconds per endpoint.
    samples: BTreeMap<&'static str, Vec<u64>>,
    errors: BTreeMap<String, u64>,
    refusals: BTreeMap<String, u64>,
    requests: u64,
    writes: u64,
    journeys: u64,
}

impl Stats {
    fn record(&mut self, name: &'static str, took: Duration) {
        self.samples.entry(name).or_default().push(took.as_micros().max(1) as u64);
        self.requests += 1;
    }

    fn error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        for (k, mut v) in other.samples {
            self.samples.entry(k).or_default().append(&mut v);
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.refusals {
            *self.refusals.entry(k).or_default() += v;
        }
        self.requests += other.requests;
        self.writes += other.writes;
        self.journeys += other.journeys;
    }

    fn report(self, scenario: Scenario, elapsed: Duration, opts: &Options) -> Report {
        let ms = |us: u64| us as f64 / 1000.0;
        Report {
            scenario,
            elapsed,
            requests: self.requests,
            writes: self.writes,
            journeys: self.journeys,
            errors: self.errors,
            refusals: self.refusals,
            endpoints: self
                .samples
                .into_iter()
                .map(|(k, samples)| {
                    let mut h = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("bounds");
                    for us in samples {
                        h.saturating_record(us);
                    }
                    (
                        k.to_owned(),
                        EndpointFigures {
                            count: h.len(),
                            p50: ms(h.value_at_quantile(0.50)),
                            p95: ms(h.value_at_quantile(0.95)),
                            p99: ms(h.value_at_quantile(0.99)),
                            max: ms(h.max()),
                        },
                    )
                })
                .collect(),
            peak_rss_kb: opts.server_pid.and_then(peak_rss_kb),
            rush: None,
            costs: None,
            notes: Vec::new(),
        }
    }
}

/// A request that did not get the expected answer (already counted).
#[derive(Debug)]
pub struct Failed;

/// An answer: status, body, `Location`.
struct Answer {
    status: u16,
    body: String,
    location: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// One simulated client.
struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    stats: Stats,
    /// The in-process server's database, when each request's own cost is traced
    /// ([`trace_journey`]): one client alone, jobs off.
    trace: Option<(persistence::Db, Vec<StepCost>)>,
}

/// What one request of a traced journey cost the database.
#[derive(Debug, Clone)]
pub struct StepCost {
    pub step: &'static str,
    pub statements: u64,
    /// Of those, `BEGIN`/`COMMIT`/`ROLLBACK`.
    pub control: u64,
    pub transactions: u64,
    /// Turns at the database: each a hand-off of the request's database work to a blocking
    /// thread and back (the sandboxes' own reads and writes take theirs).
    pub turns: u64,
}

impl StepCost {
    /// The statements that read and write rows.
    pub fn work(&self) -> u64 {
        self.statements - self.control
    }
}

impl Client {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) }
    }

    /// Sends, times and counts a request; anything outside `ok` (and `refused`, which is
    /// counted apart) is an error.
    async fn call(
        &mut self,
        name: &'static str,
        req: reqwest::RequestBuilder,
        ok: &[u16],
        refused: &[u16],
    ) -> Result<Answer, Failed> {
        let write = req.try_clone().and_then(|r| r.build().ok()).is_some_and(|r| r.method() != reqwest::Method::GET);
        let before = self.trace.as_ref().map(|(db, _)| db.counts());
        let started = Instant::now();
        let res = req.send().await;
        let res = match res {
            Ok(r) => r,
            Err(_) => {
                self.stats.record(name, started.elapsed());
                self.stats.error(format!("{name}:io"));
                return Err(Failed);
            }
        };
        let status = res.status().as_u16();
        let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = res.text().await;
        self.stats.record(name, started.elapsed());
        if let (Some((db, steps)), Some(before)) = (self.trace.as_mut(), before) {
            let after = db.counts();
            steps.push(StepCost {
                step: name,
                statements: after.statements - before.statements,
                control: after.control - before.control,
                transactions: after.transactions - before.transactions,
                turns: after.turns - before.turns,
            });
        }
        let Ok(body) = body else {
            self.stats.error(format!("{name}:io"));
            return Err(Failed);
        };
        if ok.contains(&status) {
            if write {
                self.stats.writes += 1;
            }
            Ok(Answer { status, body, location })
        } else if refused.contains(&status) {
            *self.stats.refusals.entry(format!("{name}:{status}")).or_default() += 1;
            Ok(Answer { status, body, location })
        } else {
            let code = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned))
                .map(|c| format!(":{c}"))
                .unwrap_or_default();
            self.stats.error(format!("{name}:{status}{code}"));
            Err(Failed)
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.get(self.url(path));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.url(path)).json(body);
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

// ---------------------------------------------------------------- the journey's steps

static FORM_ACTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"<form method="post" action="([^"]+)""#).expect("re"));
static ANY_ACTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"action="([^"]+)""#).expect("re"));
static HIDDEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)">"#).expect("re"));

fn personal_info(p: &PersonRow) -> Value {
    let birth = domain::calendar::JalaliDate::parse(&p.birth_date_jalali).expect("a generated birth date");
    let hijri = domain::calendar::lunar_birth_options(birth)[2].to_string();
    json!({
        "birth_date_jalali": p.birth_date_jalali,
        "birth_date_hijri": hijri,
        "gender": p.gender,
        "religion": "islam",
        "mother_name": p.mother_name,
        "mobile": p.mobile,
    })
}

fn typical_needs() -> Value {
    json!({"can_leave_home": true, "can_climb_stairs": true, "pupils_visible": true, "fingers_intact": true})
}

/// The next load-test citizen from a shared counter (skipping the generator's gaps).
fn next_citizen(counter: &AtomicU64) -> (u64, PersonRow) {
    loop {
        let i = counter.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = api::seed::loadtest::citizen(i) {
            return (i, p);
        }
    }
}

/// A cheap deterministic mix of a number (for spreading cities and dates).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Captcha, entry, personal information, special needs: the citizen's token.
async fn draft(c: &mut Client, p: &PersonRow) -> Result<String, Failed> {
    let captcha = c.call("captcha", c.get("/api/v1/captcha", None), &[200], &[]).await?.json();
    let answer = match &captcha["sandbox_answer"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let body = json!({"national_id": p.national_id, "serial": p.serial,
        "captcha_id": captcha["captcha_id"], "captcha_answer": answer});
    let entry =
        c.call("entry", c.send(reqwest::Method::POST, "/api/v1/citizen/sessions", None, &body), &[201], &[]).await?;
    let token = entry.json()["token"].as_str().ok_or(Failed)?.to_owned();
    let info = personal_info(p);
    let req = c.send(reqwest::Method::PUT, "/api/v1/citizen/application/personal-info", Some(&token), &info);
    c.call("personal_info", req, &[200, 201], &[]).await?;
    let req = c.send(reqwest::Method::PUT, "/api/v1/citizen/application/special-needs", Some(&token), &typical_needs());
    c.call("special_needs", req, &[200], &[]).await?;
    Ok(token)
}

/// Searches from a spread-out city and date until an office has a free seat, and holds it.
async fn find_and_hold(c: &mut Client, opts: &Options, token: &str, i: u64) -> Result<(), Failed> {
    let r = mix(i);
    let cities = opts.city_codes.len().max(1) as u64;
    for attempt in 0..20u64 {
        let city = &opts.city_codes[((r + attempt) % cities) as usize];
        let ahead = 1 + ((r >> 20).wrapping_add(attempt * 7) % opts.horizon_days.max(1) as u64) as i64;
        let date = opts.today + chrono::Duration::days(ahead);
        let path = format!("/api/v1/offices/availability?date={date}&city_code={city}");
        let rows = c.call("availability", c.get(&path, Some(token)), &[200], &[]).await?.json();
        let rows = rows["items"].as_array().cloned().unwrap_or_default();
        let free: Vec<&Value> = rows.iter().filter(|r| r["free"].as_u64().unwrap_or(0) > 0).collect();
        if free.is_empty() {
            continue;
        }
        // Not everyone takes the first row: spread over the best few.
        let row = free[((r >> 40) as usize) % free.len().min(5)];
        let body = json!({"office_id": row["office"]["id"], "date": date, "shift": row["shift"]});
        let req = c.send(reqwest::Method::PUT, "/api/v1/citizen/application/appointment", Some(token), &body);
        let held = c.call("hold", req, &[200], &[409]).await?;
        if held.status == 200 {
            return Ok(());
        }
    }
    c.stats.error("hold:no_free_seat_found".into());
    Err(Failed)
}

/// Payment through the sandbox bank's page and form, and the callback.
async fn pay(c: &mut Client, token: &str) -> Result<(), Failed> {
    let req = c.send(
        reqwest::Method::POST,
        "/api/v1/citizen/application/payments",
        Some(token),
        &json!({"gateway": "sandbox"}),
    );
    let payment = c.call("payment", req, &[201], &[]).await?.json();
    let redirect = payment["redirect_url"].as_str().ok_or(Failed)?.to_owned();
    let page = c.call("bank_page", c.get(&redirect, None), &[200], &[]).await?;
    let action = FORM_ACTION.captures(&page.body).map(|m| m[1].to_owned()).ok_or(Failed)?;
    let req = c.http.post(c.url(&action)).form(&[("outcome", "success")]);
    let back = c.call("bank_choose", req, &[200], &[]).await?;
    let callback = ANY_ACTION.captures(&back.body).map(|m| m[1].replace("&amp;", "&")).ok_or(Failed)?;
    let fields: Vec<(String, String)> =
        HIDDEN.captures_iter(&back.body).map(|m| (m[1].to_owned(), m[2].to_owned())).collect();
    let req = c.http.post(c.url(&callback)).form(&fields);
    let done = c.call("callback", req, &[303], &[]).await?;
    let location = done.location.unwrap_or_default();
    if !location.contains("outcome=success") {
        let outcome = location.split(['?', '&']).find(|p| p.starts_with("outcome=")).unwrap_or("outcome=none");
        c.stats.error(format!("callback:{outcome}"));
        return Err(Failed);
    }
    Ok(())
}

/// The whole journey of citizen `i`; returns the token.
async fn journey(c: &mut Client, opts: &Options, i: u64, p: &PersonRow) -> Result<String, Failed> {
    let token = draft(c, p).await?;
    find_and_hold(c, opts, &token, i).await?;
    pay(c, &token).await?;
    c.call("receipt", c.get("/api/v1/citizen/application/receipt", Some(&token)), &[200], &[]).await?;
    c.stats.journeys += 1;
    Ok(token)
}

/// Runs the journey of the next load-test citizen from `citizens` alone against an
/// in-process server whose database is `db` (jobs off, nothing else running), and returns
/// what each request cost the database, read from `db`'s own counters around it.
pub async fn trace_journey(
    opts: &Options,
    db: persistence::Db,
    citizens: &AtomicU64,
) -> Result<Vec<StepCost>, BTreeMap<String, u64>> {
    let base: Arc<str> = opts.base.trim_end_matches('/').into();
    let mut c = Client { http: http_client(), base, stats: Stats::default(), trace: Some((db, Vec::new())) };
    let (i, p) = next_citizen(citizens);
    let done = journey(&mut c, opts, i, &p).await;
    match (done, c.trace) {
        (Ok(_), Some((_, steps))) => Ok(steps),
        _ => Err(c.stats.errors),
    }
}

// ---------------------------------------------------------------- running

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// Runs `work(client, n)` on `concurrency` clients for n = 0, 1, 2, … until `count` items
/// were started or `duration` has passed; returns the merged stats and the elapsed time.
async fn drive<F, Fut>(
    http: &reqwest::Client,
    base: &Arc<str>,
    concurrency: usize,
    count: Option<u64>,
    duration: Option<Duration>,
    work: F,
) -> (Stats, Duration)
where
    F: Fn(Client, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Client> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, work) = (next.clone(), work.clone());
        let mut client = Client { http: http.clone(), base: base.clone(), stats: Stats::default(), trace: None };
        tasks.spawn(async move {
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|c| n >= c) {
                    break;
                }
                client = work(client, n).await;
            }
            client.stats
        });
    }
    let mut total = Stats::default();
    while let Some(stats) = tasks.join_next().await {
        total.merge(stats.expect("a load task panicked"));
    }
    (total, started.elapsed())
}

/// Runs a scenario. `db` (the server's database) is needed by `rush` only: it sets up the
/// contested slot and checks the bookings afterwards.
pub async fn run(opts: &Options, db: Option<persistence::Db>) -> Report {
    assert!(!opts.city_codes.is_empty(), "city codes are needed");
    let http = http_client();
    let base: Arc<str> = opts.base.trim_end_matches('/').into();
    let citizens = Arc::new(AtomicU64::new(opts.first_citizen));
    let shared = Arc::new(opts.clone());
    match opts.scenario {
        Scenario::Journey => {
            let work = {
                let (citizens, opts) = (citizens.clone(), shared.clone());
                move |mut c: Client, _n: u64| {
                    let (citizens, opts) = (citizens.clone(), opts.clone());
                    async move {
                        let (i, p) = next_citizen(&citizens);
                        let _ = journey(&mut c, &opts, i, &p).await;
                        c
                    }
                }
            };
            if let Some(warmup) = opts.warmup {
                drive(&http, &base, opts.concurrency, None, Some(warmup), work.clone()).await;
            }
            let probe = CostProbe::take(&http, &base, opts, db.as_ref()).await;
            let (stats, elapsed) = drive(&http, &base, opts.concurrency, opts.count, opts.duration, work).await;
            let end = CostProbe::take(&http, &base, opts, db.as_ref()).await;
            let mut report = stats.report(Scenario::Journey, elapsed, opts);
            report.costs = Some(probe.until(&end));
            report.notes.push(format!("citizens {}..{} used", opts.first_citizen, citizens.load(Ordering::Relaxed)));
            report
        }
        Scenario::Search => {
            let work = {
                let opts = shared.clone();
                move |mut c: Client, n: u64| {
                    let opts = opts.clone();
                    async move {
                        let r = mix(n ^ 0x5EA2C4);
                        let city = &opts.city_codes[(r % opts.city_codes.len() as u64) as usize];
                        let ahead = 1 + ((r >> 24) % opts.horizon_days.max(1) as u64) as i64;
                        let date = opts.today + chrono::Duration::days(ahead);
                        let path = format!("/api/v1/offices/availability?date={date}&city_code={city}");
                        let _ = c.call("availability", c.get(&path, None), &[200], &[]).await;
                        c
                    }
                }
            };
            let probe = CostProbe::take(&http, &base, opts, db.as_ref()).await;
            let (stats, elapsed) = drive(&http, &base, opts.concurrency, opts.count, opts.duration, work).await;
            let end = CostProbe::take(&http, &base, opts, db.as_ref()).await;
            let mut report = stats.report(Scenario::Search, elapsed, opts);
            report.costs = Some(probe.until(&end));
            report
        }
        Scenario::Status => status(opts, &http, &base, citizens, db).await,
        Scenario::Rush => rush(opts, &http, &base, citizens, db).await,
    }
}

/// Lookups per citizen (the daily limit is 20).
const LOOKUPS_EACH: u64 = 19;

async fn status(
    opts: &Options,
    http: &reqwest::Client,
    base: &Arc<str>,
    citizens: Arc<AtomicU64>,
    db: Option<persistence::Db>,
) -> Report {
    let lookups = opts.count.unwrap_or(2_000);
    let people = lookups.div_ceil(LOOKUPS_EACH).max(1);
    // Preparation (not measured): registered citizens and their tracking codes.
    let registered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let prep = {
        let (citizens, opts, registered) = (citizens.clone(), Arc::new(opts.clone()), registered.clone());
        move |mut c: Client, _n: u64| {
            let (citizens, opts, registered) = (citizens.clone(), opts.clone(), registered.clone());
            async move {
                let (i, p) = next_citizen(&citizens);
                if let Ok(token) = journey(&mut c, &opts, i, &p).await
                    && let Ok(view) =
                        c.call("application", c.get("/api/v1/citizen/application", Some(&token)), &[200], &[]).await
                    && let Some(code) = view.json()["tracking_code"].as_str()
                {
                    registered.lock().expect("lock").push((p.national_id.clone(), code.to_owned()));
                }
                c
            }
        }
    };
    let (prep_stats, _) = drive(http, base, opts.concurrency, Some(people), None, prep).await;
    let registered: Arc<Vec<(String, String)>> = Arc::new(std::mem::take(&mut *registered.lock().expect("lock")));
    if registered.is_empty() {
        let mut report = prep_stats.report(Scenario::Status, Duration::ZERO, opts);
        report.notes.push("preparation failed: nobody registered".into());
        report.errors.insert("prep:no_registered_citizen".into(), 1);
        return report;
    }
    let usable = registered.len() as u64 * LOOKUPS_EACH;
    let work = {
        let registered = registered.clone();
        move |mut c: Client, n: u64| {
            let registered = registered.clone();
            async move {
                let (nid, code) = &registered[(n % registered.len() as u64) as usize];
                let path = format!("/api/v1/public/status?national_id={nid}&tracking_code={code}");
                let _ = c.call("status", c.get(&path, None), &[200], &[]).await;
                c
            }
        }
    };
    let probe = CostProbe::take(http, base, opts, db.as_ref()).await;
    let (stats, elapsed) = drive(http, base, opts.concurrency, Some(lookups.min(usable)), opts.duration, work).await;
    let end = CostProbe::take(http, base, opts, db.as_ref()).await;
    let mut report = stats.report(Scenario::Status, elapsed, opts);
    report.costs = Some(probe.until(&end));
    report.notes.push(format!(
        "{} citizens registered beforehand ({} preparation errors)",
        registered.len(),
        prep_stats.errors.values().sum::<u64>()
    ));
    report
}

async fn rush(
    opts: &Options,
    http: &reqwest::Client,
    base: &Arc<str>,
    citizens: Arc<AtomicU64>,
    db: Option<persistence::Db>,
) -> Report {
    let clients = opts.count.unwrap_or(1_000);
    let db = db.expect("rush needs the server's database (--database-url)");
    // Preparation (not measured): every client drafted up to the choice of a seat.
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let prep = {
        let (citizens, tokens) = (citizens.clone(), tokens.clone());
        move |mut c: Client, _n: u64| {
            let (citizens, tokens) = (citizens.clone(), tokens.clone());
            async move {
                let (_, p) = next_citizen(&citizens);
                if let Ok(t) = draft(&mut c, &p).await {
                    tokens.lock().expect("lock").push(t);
                }
                c
            }
        }
    };
    let (prep_stats, _) = drive(http, base, opts.concurrency, Some(clients), None, prep).await;
    let tokens: Vec<String> = std::mem::take(&mut *tokens.lock().expect("lock"));
    let drafted = tokens.len() as u64;

    // The contested slot: the first open slot 40+ days ahead, given exactly `seats` free seats.
    let target = opts.today + chrono::Duration::days(opts.horizon_days.min(40));
    let seats = opts.seats;
    let (office_id, date, shift, taken_before) = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            use diesel::prelude::*;
            use persistence::schema::slots::dsl as s;
            let mut conn = db.get().expect("conn");
            let (office, date, shift, taken): (String, NaiveDate, String, i32) = s::slots
                .filter(s::date.ge(target))
                .filter(s::closed.eq(false))
                .filter(s::capacity.gt(0))
                .order((s::date.asc(), s::office_id.asc(), s::shift.asc()))
                .select((s::office_id, s::date, s::shift, s::taken))
                .first(&mut conn)
                .expect("an open slot to rush");
            diesel::update(
                s::slots.filter(s::office_id.eq(&office)).filter(s::date.eq(date)).filter(s::shift.eq(&shift)),
            )
            .set(s::capacity.eq(taken + seats as i32))
            .execute(&mut conn)
            .expect("set the slot's capacity");
            (office, date, shift, taken)
        })
        .await
        .expect("join")
    };

    // The applications already on the slot (earlier runs'), so the winners can be told apart.
    let (office, sh) = (office_id.clone(), shift.clone());
    let before: std::collections::BTreeSet<String> = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || slot_applications(&db, &office, date, &sh))
            .await
            .expect("join")
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };

    // Everyone presses "hold" at once; the winners pay.
    let probe = CostProbe::take(http, base, opts, Some(&db)).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let barrier = barrier.clone();
        let mut c = Client { http: http.clone(), base: base.clone(), stats: Stats::default(), trace: None };
        let body = json!({"office_id": office_id, "date": date, "shift": shift});
        tasks.spawn(async move {
            barrier.wait().await;
            let req = c.send(reqwest::Method::PUT, "/api/v1/citizen/application/appointment", Some(&token), &body);
            let won = matches!(c.call("hold", req, &[200], &[409]).await, Ok(Answer { status: 200, .. }));
            let paid = won && pay(&mut c, &token).await.is_ok();
            if paid {
                c.stats.journeys += 1;
            }
            (won.then_some(token), paid, c.stats)
        });
    }
    let mut total = Stats::default();
    let mut winner_tokens = Vec::new();
    let mut paid = 0;
    while let Some(done) = tasks.join_next().await {
        let (won, did_pay, stats) = done.expect("a rush task panicked");
        winner_tokens.extend(won);
        paid += u64::from(did_pay);
        total.merge(stats);
    }
    let elapsed = started.elapsed();
    let end = CostProbe::take(http, base, opts, Some(&db)).await;
    let winners = winner_tokens.len() as u64;
    let losers = total.refusals.values().sum();
    let mut report = total.report(Scenario::Rush, elapsed, opts);
    report.costs = Some(probe.until(&end));
    // Beside the clients' figures, which on a shared machine include the load generator's
    // own wait for a core: how long the server took over each hold.
    report.notes.extend(server_side_holds(probe.hold_buckets.as_deref(), end.hold_buckets.as_deref()));
    let mut problems = Vec::new();

    // Each winner reads her own application: the contested seat, booked, is hers.
    let mut winner_ids = std::collections::BTreeSet::new();
    let mut winners_holding = 0;
    let mut checker = Client { http: http.clone(), base: base.clone(), stats: Stats::default(), trace: None };
    for token in &winner_tokens {
        let Ok(view) =
            checker.call("application", checker.get("/api/v1/citizen/application", Some(token)), &[200], &[]).await
        else {
            problems.push("a winner cannot read her application".into());
            continue;
        };
        let view = view.json();
        let a = &view["appointment"];
        let holds = a["office"]["id"] == office_id.as_str()
            && a["date"] == date.to_string().as_str()
            && a["shift"] == shift.as_str()
            && view["appointment_status"] == "booked";
        if holds {
            winners_holding += 1;
        } else {
            problems.push(format!(
                "winner {} does not hold the seat booked: appointment {a}, status {}",
                view["id"], view["appointment_status"]
            ));
        }
        if let Some(id) = view["id"].as_str() {
            winner_ids.insert(id.to_owned());
        }
    }
    for (k, v) in checker.stats.errors {
        *report.errors.entry(format!("check/{k}")).or_default() += v;
    }

    let (office, sh) = (office_id.clone(), shift.clone());
    let db2 = db.clone();
    let on_slot = tokio::task::spawn_blocking(move || slot_applications(&db2, &office, date, &sh)).await.expect("join");
    let (office, sh) = (office_id.clone(), shift.clone());
    let (capacity, taken) = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use persistence::schema::slots::dsl as s;
        let mut conn = db.get().expect("conn");
        s::slots
            .filter(s::office_id.eq(&office))
            .filter(s::date.eq(date))
            .filter(s::shift.eq(&sh))
            .select((s::capacity, s::taken))
            .first::<(i32, i32)>(&mut conn)
            .expect("slot")
    })
    .await
    .expect("join");
    let bookings = on_slot.len() as i64;
    let held_in_db = on_slot.iter().filter(|(_, st)| st == "held").count() as i64;
    let booked_in_db = on_slot.iter().filter(|(_, st)| st == "booked").count() as i64;
    let strangers = on_slot.iter().filter(|(id, _)| !winner_ids.contains(id) && !before.contains(id)).count() as i64;
    let missing = winner_ids.iter().filter(|id| !on_slot.iter().any(|(i, _)| i == *id)).count();

    let expected = u64::from(seats).min(drafted);
    if winners != expected {
        problems.push(format!("{winners} winners for {expected} free seats"));
    }
    if paid != winners {
        problems.push(format!("{} of {winners} winners could not pay", winners - paid));
    }
    if winners_holding != winners {
        problems.push(format!("{} winners do not hold the seat", winners - winners_holding));
    }
    if missing > 0 {
        problems.push(format!("{missing} winners' applications are not on the slot in the database"));
    }
    if strangers > 0 {
        problems.push(format!("{strangers} applications that did not win hold seats on the slot"));
    }
    if held_in_db != 0 {
        problems.push(format!("{held_in_db} seats are still only held after every winner paid"));
    }
    if bookings - before.len() as i64 != winners as i64 || i64::from(taken) != bookings || taken != capacity {
        problems.push(format!(
            "counters: {bookings} on the slot ({} from before), taken {taken}, capacity {capacity}",
            before.len()
        ));
    }
    report.rush = Some(RushCheck {
        office_id,
        date,
        shift,
        winners,
        losers,
        paid,
        winners_holding,
        bookings_in_db: bookings,
        held_in_db,
        booked_in_db,
        strangers,
        taken_before,
        capacity,
        taken,
        ok: problems.is_empty(),
        problems,
    });
    report.notes.push(format!(
        "{drafted} of {clients} clients drafted beforehand ({} preparation errors)",
        prep_stats.errors.values().sum::<u64>()
    ));
    for (k, v) in prep_stats.errors {
        *report.errors.entry(format!("prep/{k}")).or_default() += v;
    }
    report
}

/// The applications holding or booked on a slot: (id, appointment status).
fn slot_applications(db: &persistence::Db, office: &str, date: NaiveDate, shift: &str) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use persistence::schema::applications::dsl as a;
    let mut conn = db.get().expect("conn");
    a::applications
        .filter(a::slot_office_id.eq(office))
        .filter(a::slot_date.eq(date))
        .filter(a::slot_shift.eq(shift))
        .filter(a::appointment_status.eq_any(["held", "booked"]))
        .select((a::id, a::appointment_status))
        .load(&mut conn)
        .expect("the slot's applications")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_figures_for_the_holds_come_from_its_histogram_between_two_probes() {
        let route = HOLD_ROUTE;
        let metrics = |counts: [u64; 4]| {
            let les = ["0.025", "0.05", "0.1", "+Inf"];
            let mut text = String::from("ncr_db_statements_total 7\n");
            for (le, n) in les.iter().zip(counts) {
                text.push_str(&format!("ncr_http_request_duration_seconds_bucket{{{route},le=\"{le}\"}} {n}\n"));
            }
            // Another route's buckets are not the holds'.
            text.push_str(
                "ncr_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health/live\",le=\"0.025\"} 99\n",
            );
            text
        };
        let before = hold_buckets(&metrics([5, 10, 10, 10]));
        assert_eq!(before, vec![(0.025, 5), (0.05, 10), (0.1, 10), (f64::INFINITY, 10)]);
        // 100 holds during the rush: 5 within 25 ms, 60 within 50 ms, 99 within 100 ms.
        let after = hold_buckets(&metrics([10, 70, 109, 110]));
        assert_eq!(
            server_side_holds(Some(&before), Some(&after)).as_deref(),
            Some("server-side (its histogram: middleware entry → response ready) 100 holds, p50 ≤ 50 ms, p99 ≤ 100 ms")
        );
        // A server that had served no hold yet has no buckets for the route: all are new.
        assert!(server_side_holds(Some(&[]), Some(&after)).is_some_and(|s| s.contains(" 110 holds, ")));
        // No figure rather than a wrong one: no hold between the probes, a probe that could
        // not read /metrics (everything since the start would count), a restarted server.
        assert_eq!(server_side_holds(Some(&after), Some(&after)), None);
        assert_eq!(server_side_holds(None, Some(&after)), None);
        assert_eq!(server_side_holds(Some(&after), Some(&before)), None);
        assert_eq!(server_side_holds(Some(&before), Some(&[])), None);
    }
}
