//! `loadtest`: drives a running `ncr` server with one of the load scenarios of issue 11
//! (`journey`, `search`, `rush`, `status`) and prints requests/s, journeys/s, latency
//! percentiles per endpoint, errors by status code and the server's peak RSS, then one
//! machine-readable line starting with `LOADTEST_JSON `.
//!
//! The server's registry must hold the load-test citizens (`ncr seed-loadtest`), and its
//! per-address rate limit must be raised (`NCR_LIMITS__PER_IP_PER_MINUTE`).
//!
//! ```sh
//! loadtest --base http://127.0.0.1:8080 --scenario journey --concurrency 32 --duration 20 \
//!     --server-pid "$(pgrep -n ncr)" --first-citizen 0
//! loadtest --scenario rush --count 1000 --seats 100 --database-url postgres://…
//! ```

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use ncr_tests::load::{Options, Scenario, run};

#[derive(Parser)]
#[command(name = "loadtest", about = "Load scenarios against a running ncr server")]
struct Args {
    /// journey, search, rush or status.
    #[arg(long, default_value = "journey")]
    scenario: String,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Concurrent clients (rush: of the preparation; the rush itself uses all --count clients).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run (journey, search, status).
    #[arg(long)]
    duration: Option<f64>,
    /// Journeys / searches / lookups to run; rush: competing clients [rush default 1000,
    /// status default 2000].
    #[arg(long)]
    count: Option<u64>,
    /// journey: seconds of unmeasured journeys first (the server's start-up jobs, cold
    /// connections).
    #[arg(long)]
    warmup: Option<f64>,
    /// First load-test citizen index this run may use (each run needs fresh citizens).
    #[arg(long, default_value_t = 0)]
    first_citizen: u64,
    /// Seats the rush competes for.
    #[arg(long, default_value_t = 100)]
    seats: u32,
    /// Comma-separated city area codes to search [default: the national data set's 31
    /// provincial capitals].
    #[arg(long)]
    city_codes: Option<String>,
    /// Searches and holds stay within this many days from tomorrow.
    #[arg(long, default_value_t = 55)]
    horizon_days: i64,
    /// The server's Tehran date [default: today].
    #[arg(long)]
    today: Option<chrono::NaiveDate>,
    /// The server's database (rush: to set up the slot and check the bookings).
    #[arg(long, env = "NCR_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// The server's process id, for its peak RSS; or a file holding it.
    #[arg(long)]
    server_pid: Option<String>,
}

fn main() {
    let args = Args::parse();
    let Some(scenario) = Scenario::parse(&args.scenario) else {
        eprintln!("loadtest: unknown scenario {:?} (journey, search, rush, status)", args.scenario);
        std::process::exit(2);
    };
    let server_pid = args
        .server_pid
        .as_deref()
        .and_then(|p| p.parse().ok().or_else(|| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse().ok())));
    let city_codes = match &args.city_codes {
        Some(list) => list.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect(),
        None => api::seed::national::area_codes(),
    };
    let opts = Options {
        base: args.base,
        scenario,
        concurrency: args.concurrency,
        duration: args.duration.map(Duration::from_secs_f64),
        count: args.count,
        warmup: args.warmup.map(Duration::from_secs_f64),
        first_citizen: args.first_citizen,
        today: args.today.unwrap_or_else(|| domain::calendar::tehran_date(chrono::Utc::now())),
        horizon_days: args.horizon_days,
        city_codes,
        seats: args.seats,
        server_pid,
    };
    if opts.duration.is_none() && opts.count.is_none() && matches!(scenario, Scenario::Journey | Scenario::Search) {
        eprintln!("loadtest: give --duration or --count");
        std::process::exit(2);
    }
    let db = args.database_url.map(|mut url| {
        // Named, so that the server's cost is measured without the load generator's.
        if url.starts_with("postgres") {
            let sep = if url.contains('?') { '&' } else { '?' };
            url = format!("{url}{sep}application_name={}", ncr_tests::load::LOADTEST_APPLICATION_NAME);
        }
        persistence::Db::connect(&persistence::DbSettings {
            url,
            max_connections: 2,
            connection_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(30),
            transaction_pooler: false,
        })
        .unwrap_or_else(|e| {
            eprintln!("loadtest: cannot open the database: {e}");
            std::process::exit(2);
        })
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let report = runtime.block_on(run(&opts, db));
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", report.table());
    let _ = writeln!(out, "LOADTEST_JSON {}", report.to_json());
    // Any error fails the run (a benchmark with errors measures something else), as does a
    // rush whose winners do not hold exactly the seats.
    let mut failed = Vec::new();
    if report.error_count() > 0 {
        failed.push(format!("{} errors", report.error_count()));
    }
    if let Some(r) = report.rush.as_ref().filter(|r| !r.ok) {
        failed.push(format!("the rush check failed: {}", r.problems.join("; ")));
    }
    if !failed.is_empty() {
        eprintln!("loadtest: FAILED — {}", failed.join("; "));
        std::process::exit(1);
    }
}
