//! `ncr`: serve the API, run migrations, load demo data, print the OpenAPI contract.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use api::config::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ncr", version, about = "National smart ID card pre-registration and e-folder API")]
struct Cli {
    /// Configuration file (optional; defaults to ./ncr.toml when it exists).
    #[arg(long, global = true, env = "NCR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long)]
        bind: Option<String>,
        /// sqlite://path or postgres://… [default: sqlite://data/ncr.db]
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Load the demo data (offices, synthetic population, sandbox pairs); idempotent.
    SeedDemo {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Generate a national-scale benchmark data set: offices over ~400 cities with weekly
    /// capacity and slots for the coming days (idempotent; not demo data).
    SeedNational {
        /// How many offices (Tehran gets a tenth).
        #[arg(long, default_value_t = 10_000)]
        offices: usize,
        /// How many days of slots, from tomorrow.
        #[arg(long, default_value_t = 365)]
        days: u32,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Generate the load-test data set: the national-scale offices and slots of
    /// `seed-national` plus synthetic eligible citizens in the sandbox registry, whose
    /// national codes the `loadtest` tool derives itself (idempotent; not demo data).
    SeedLoadtest {
        /// How many offices (1,000 vs 10,000 shows how search time grows).
        #[arg(long, default_value_t = 10_000)]
        offices: usize,
        /// How many days of slots, from tomorrow.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// How many synthetic citizens.
        #[arg(long, default_value_t = 100_000)]
        citizens: u64,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Carry applications over from the old Portal: a CSV file, all or nothing, idempotent
    /// (columns in docs/domain/legacy-import.md; the same import as
    /// `POST /api/v1/admin/legacy-applications`). Every bad cell is printed as `row N: column`.
    ImportLegacy {
        /// The CSV file (UTF-8, header row).
        file: PathBuf,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Print the OpenAPI document as YAML.
    Openapi,
    /// Print a fresh set of keys for the [keys] section of ncr.toml.
    Keygen,
}

fn load(cli_config: Option<&PathBuf>, database_url: Option<String>, bind: Option<String>) -> Config {
    let mut config = match Config::load(cli_config.map(PathBuf::as_path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ncr: invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    if let Some(url) = database_url {
        config.database_url = url;
    }
    if let Some(bind) = bind {
        config.bind = bind;
    }
    config
}

fn fail(message: impl std::fmt::Display) -> ! {
    tracing::error!("{message}");
    eprintln!("ncr: {message}");
    std::process::exit(1);
}

#[expect(clippy::print_stdout, reason = "the CLI prints its output")]
fn main() {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { bind: None, database_url: None }) {
        Command::Openapi => print!("{}", api::server::openapi_yaml()),
        Command::Keygen => print!("[keys]\n{}", toml_keys()),
        Command::Migrate { database_url } => {
            let config = load(cli.config.as_ref(), database_url, None);
            api::logging::init_logging(&config);
            let db = persistence::Db::connect(&config.db_settings()).unwrap_or_else(|e| fail(e));
            let n = db.migrate().unwrap_or_else(|e| fail(e));
            println!("{n} migration(s) applied");
            // Values a migration moved out of clear columns are sealed with the keys; without
            // keys here, the server seals them when it starts.
            match api::secrets::load(&config) {
                Ok(keys) => {
                    let sealed = api::bootstrap::seal_waiting(&db, &keys.pii).unwrap_or_else(|e| fail(e));
                    println!("{sealed} personal value(s) sealed at rest");
                }
                Err(e) => println!("personal values are sealed when the server starts ({e})"),
            }
        }
        Command::SeedDemo { database_url } => {
            let mut config = load(cli.config.as_ref(), database_url, None);
            config.demo_data = api::config::DemoData::Never;
            api::logging::init_logging(&config);
            api::profile::check_demo_seed(&config).unwrap_or_else(|e| fail(e));
            let state = api::build_state(config, api::Environment::default()).unwrap_or_else(|e| fail(e));
            let summary = api::seed::seed_demo(&state).unwrap_or_else(|e| fail(e));
            println!("{summary}");
        }
        Command::SeedNational { offices, days, database_url } => {
            let mut config = load(cli.config.as_ref(), database_url, None);
            config.demo_data = api::config::DemoData::Never;
            api::logging::init_logging(&config);
            let state = api::build_state(config, api::Environment::default()).unwrap_or_else(|e| fail(e));
            let summary = api::seed::national::generate(&state, offices, days).unwrap_or_else(|e| fail(e));
            println!("{summary}");
        }
        Command::SeedLoadtest { offices, days, citizens, database_url } => {
            let mut config = load(cli.config.as_ref(), database_url, None);
            config.demo_data = api::config::DemoData::Never;
            api::logging::init_logging(&config);
            let state = api::build_state(config, api::Environment::default()).unwrap_or_else(|e| fail(e));
            let summary = api::seed::loadtest::generate(&state, offices, days, citizens).unwrap_or_else(|e| fail(e));
            println!("{summary}");
        }
        Command::ImportLegacy { file, database_url } => {
            let mut config = load(cli.config.as_ref(), database_url, None);
            config.demo_data = api::config::DemoData::Never;
            api::logging::init_logging(&config);
            let bytes = std::fs::read(&file).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", file.display())));
            let state = api::build_state(config, api::Environment::default()).unwrap_or_else(|e| fail(e));
            match api::journey::legacy::import_now(&state, &bytes) {
                Ok(r) => println!("{} created, {} unchanged, {} seats taken", r.created, r.unchanged, r.seats_taken),
                Err(api::error::ApiError::Fields(cells)) => {
                    for cell in &cells {
                        eprintln!("{}: {} ({})", cell.field, cell.code(), cell.message(domain::Lang::En));
                    }
                    fail(format!("nothing imported: {} bad cell(s)", cells.len()));
                }
                Err(e) => fail(format!("nothing imported: {} ({e})", e.code())),
            }
        }
        Command::Serve { bind, database_url } => {
            let config = load(cli.config.as_ref(), database_url, bind);
            api::logging::init_logging(&config);
            serve(config);
        }
    }
}

fn toml_keys() -> String {
    let keys = api::secrets::generate();
    let text = toml::to_string(&keys).unwrap_or_else(|e| fail(e));
    // Nested tables belong under [keys].
    text.replace("[[signing]]", "[[keys.signing]]").replace("[[pii]]", "[[keys.pii]]")
}

fn serve(mut config: Config) {
    let started = std::time::Instant::now();
    // The production profile refuses sandboxes before anything is opened or listened on.
    api::profile::check(&config).unwrap_or_else(|e| fail(e));
    let bind = config.bind.clone();
    let listener = TcpListener::bind(&bind).unwrap_or_else(|e| fail(format!("cannot listen on {bind}: {e}")));
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(bind);
    // Without a configured public_url, callbacks and links use the address actually bound.
    config.settle_public_url(listener.local_addr().ok());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| fail(e));
    let state = runtime
        .block_on(async {
            tokio::task::spawn_blocking(move || api::build_state(config, api::Environment::default())).await
        })
        .unwrap_or_else(|e| fail(e))
        .unwrap_or_else(|e| fail(e));
    let metrics_listener = state.config.metrics.bind.clone().map(|bind| {
        TcpListener::bind(&bind).unwrap_or_else(|e| fail(format!("cannot listen on {bind} (metrics.bind): {e}")))
    });
    let state = Arc::new(state);
    actix_web::rt::System::new().block_on(async move {
        if state.config.jobs.enabled {
            api::jobs::spawn(state.clone());
        }
        let server = api::server::serve(state.clone(), listener).unwrap_or_else(|e| fail(e));
        let mut handles = vec![server.handle()];
        if let Some(listener) = metrics_listener {
            let metrics = api::server::serve_metrics(state.clone(), listener).unwrap_or_else(|e| fail(e));
            handles.push(metrics.handle());
            actix_web::rt::spawn(metrics);
        }
        actix_web::rt::spawn(api::shutdown::drain_on_signal(state.clone(), handles));
        tracing::info!(
            api = %format!("http://{addr}/api/v1"),
            docs = %format!("http://{addr}/docs/"),
            ready_ms = started.elapsed().as_millis() as u64,
            "ncr is listening"
        );
        if let Err(e) = server.await {
            fail(e);
        }
        tracing::info!("ncr stopped");
    });
}
