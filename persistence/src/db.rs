//! Connections, the pool, migrations and transactions.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::error::DbError;

/// One connection to either backend. PostgreSQL is listed first because SQLite
/// would accept any string as a file name.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl DbConn {
    pub fn backend(&self) -> Backend {
        match self {
            DbConn::Pg(_) => Backend::Postgres,
            DbConn::Sqlite(_) => Backend::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Pool and connection settings.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub connection_timeout: Duration,
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL behind a pooler in transaction mode (PgBouncer): no named prepared
    /// statements, no session settings, migrations in one transaction.
    pub transaction_pooler: bool,
}

impl DbSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            connection_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            transaction_pooler: false,
        }
    }

    pub fn backend(&self) -> Result<Backend, DbError> {
        if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if self.url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(DbError::Config(format!(
                "DATABASE_URL must start with sqlite:// or postgres:// (got {})",
                redact_url(&self.url)
            )))
        }
    }

    /// The SQLite file (or `file:` URI) behind a `sqlite://` URL.
    fn sqlite_target(&self) -> &str {
        self.url.strip_prefix("sqlite://").or_else(|| self.url.strip_prefix("sqlite:")).unwrap_or(&self.url)
    }
}

/// Hides a password in a database URL for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// What one pool's connections sent to the database since it opened, and the turns taken
/// at it: the cost of a request or a journey in statements, transactions and turns, read
/// as deltas of `/metrics` (`scripts/bench`; see
/// [docs/operating.md](../../docs/operating.md#database-cost-per-journey)). Statements and
/// transactions are counted by diesel's instrumentation on every pooled connection, turns
/// by [`Turn::connect`] (the only way to a connection), so nothing on a request's path can
/// go around them, on either backend.
#[derive(Debug, Default)]
pub struct DbCounters {
    statements: AtomicU64,
    control: AtomicU64,
    transactions: AtomicU64,
    rollbacks: AtomicU64,
    turns: AtomicU64,
}

/// A reading of [`DbCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbCounts {
    /// Statements sent, `BEGIN`/`COMMIT`/`ROLLBACK` and savepoints included.
    pub statements: u64,
    /// Of those, the transaction control: `BEGIN`, `COMMIT`, `ROLLBACK` and savepoints.
    /// `statements - control` is the work: what reads and writes rows.
    pub control: u64,
    /// Transactions begun (outermost `BEGIN`s; an autocommit statement is not counted).
    pub transactions: u64,
    /// Of those, rolled back.
    pub rollbacks: u64,
    /// Turns at the database: connections taken from the pool, each used on a blocking
    /// thread (a request's database work hands over to such a thread and back once a turn).
    pub turns: u64,
}

impl DbCounters {
    pub fn read(&self) -> DbCounts {
        DbCounts {
            statements: self.statements.load(Ordering::Relaxed),
            control: self.control.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            rollbacks: self.rollbacks.load(Ordering::Relaxed),
            turns: self.turns.load(Ordering::Relaxed),
        }
    }
}

/// The diesel instrumentation that feeds [`DbCounters`]. Diesel's transaction manager
/// announces a begin, commit or rollback (savepoints too) just before it sends the statement
/// that does it, so the next statement after such an event is transaction control.
struct Counting {
    counters: Arc<DbCounters>,
    control_next: bool,
}

impl Counting {
    fn new(counters: Arc<DbCounters>) -> Self {
        Self { counters, control_next: false }
    }
}

impl diesel::connection::Instrumentation for Counting {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent as E;
        let c = &self.counters;
        match event {
            E::StartQuery { .. } => {
                c.statements.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(&mut self.control_next) {
                    c.control.fetch_add(1, Ordering::Relaxed);
                }
            }
            E::BeginTransaction { depth, .. } => {
                self.control_next = true;
                if depth.get() == 1 {
                    c.transactions.fetch_add(1, Ordering::Relaxed);
                }
            }
            E::RollbackTransaction { depth, .. } => {
                self.control_next = true;
                if depth.get() == 1 {
                    c.rollbacks.fetch_add(1, Ordering::Relaxed);
                }
            }
            E::CommitTransaction { .. } => self.control_next = true,
            _ => {}
        }
    }
}

/// Opens connections for the pool; sets SQLite's per-connection pragmas.
#[derive(Debug, Clone)]
pub struct DbManager {
    settings: DbSettings,
    backend: Backend,
    counters: Arc<DbCounters>,
}

impl ManageConnection for DbManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.settings.url).map_err(r2d2::Error::ConnectionError)?;
                if self.settings.transaction_pooler {
                    // Each transaction may run on another server connection: a named
                    // statement prepared on one is unknown (or already taken) on the next,
                    // so diesel sends every query as one unnamed parse-bind-execute.
                    // Session settings would land on whichever server connection ran them;
                    // set them on the role instead (README: PgBouncer).
                    conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
                } else {
                    // A query stuck behind a lock must not hold a request forever.
                    conn.batch_execute("SET statement_timeout = 15000; SET lock_timeout = 10000;")
                        .map_err(r2d2::Error::QueryError)?;
                }
                conn.set_instrumentation(Counting::new(self.counters.clone()));
                Ok(DbConn::Pg(conn))
            }
            Backend::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(self.settings.sqlite_target()).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL;",
                    self.settings.sqlite_busy_timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                conn.set_instrumentation(Counting::new(self.counters.clone()));
                Ok(DbConn::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

type Pool = r2d2::Pool<DbManager>;

/// A pooled connection, taken with a turn at the database (see [`Db`]); the turn is given
/// back when the connection returns to the pool.
pub type PooledConn = r2d2::PooledConnection<DbManager>;

/// Gives a turn back each time a connection returns to the pool: every checkout took one
/// (and forgot it), so turns and connections in use stay equal.
#[derive(Debug)]
struct GiveTurnBack(Arc<Semaphore>);

impl r2d2::HandleEvent for GiveTurnBack {
    fn handle_checkin(&self, _: r2d2::event::CheckinEvent) {
        self.0.add_permits(1);
    }
}

/// A turn at the database, waited for with [`Db::turn`]: the right to one pooled
/// connection, to be taken with [`Turn::connect`] on a blocking thread. Moving the turn
/// into the blocking closure keeps it held exactly as long as the connection is used.
pub struct Turn {
    permit: OwnedSemaphorePermit,
    pool: Pool,
    counters: Arc<DbCounters>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn").finish_non_exhaustive()
    }
}

impl Turn {
    /// The connection of this turn (blocking: waits for the pool like [`Db::get`]).
    pub fn connect(self) -> Result<PooledConn, DbError> {
        let conn = self.pool.get().map_err(|e| DbError::Unavailable(format!("no database connection: {e}")))?;
        // Held by the connection from now on: the pool gives it back at check-in.
        self.permit.forget();
        self.counters.turns.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }
}

/// The connection pool and the turns at it, cheap to clone.
///
/// **A turn at the database.** Every connection is taken with one permit of a semaphore
/// sized to the pool: asynchronous callers wait for it with [`Db::turn`] — as a cheap
/// future, in arrival order — instead of parking a blocking thread on the pool, so a burst
/// of a thousand requests is a queue, not a thousand threads; blocking callers
/// ([`Db::get`]: start-up, the command line, tests) wait for one too. There is no other
/// way to a connection, so nothing can go around the queue. Waiting longer than the
/// pool's `connection_timeout` is `Unavailable` (503 with `Retry-After`).
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    turns: Arc<Semaphore>,
    counters: Arc<DbCounters>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).field("state", &self.pool.state()).finish()
    }
}

impl Db {
    /// Opens the pool. For SQLite the folder is created and WAL mode switched on once.
    pub fn connect(settings: &DbSettings) -> Result<Self, DbError> {
        let backend = settings.backend()?;
        if backend == Backend::Sqlite {
            let target = settings.sqlite_target();
            if !target.starts_with("file:")
                && target != ":memory:"
                && let Some(parent) = Path::new(target).parent().filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| DbError::Config(format!("cannot create {}: {e}", parent.display())))?;
            }
            if target == ":memory:" {
                return Err(DbError::Config(
                    "a bare :memory: database gives every pooled connection its own empty database; use sqlite:file:NAME?mode=memory&cache=shared"
                        .into(),
                ));
            }
        }
        let counters = Arc::new(DbCounters::default());
        let manager = DbManager { settings: settings.clone(), backend, counters: counters.clone() };
        let turns = Arc::new(Semaphore::new(settings.max_connections.max(1) as usize));
        let pool = r2d2::Pool::builder()
            .event_handler(Box::new(GiveTurnBack(turns.clone())))
            .max_size(settings.max_connections)
            .min_idle(Some(1))
            .connection_timeout(settings.connection_timeout)
            .test_on_check_out(false)
            .build(manager)
            .map_err(|e| DbError::Unavailable(format!("cannot open the database: {e}")))?;
        let db = Self { pool, backend, turns, counters };
        if backend == Backend::Sqlite {
            let mut conn = db.get()?;
            conn.batch_execute("PRAGMA journal_mode = WAL;").map_err(DbError::from)?;
        }
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for a turn at the database (see [`Db`]), as a future; `Unavailable` after
    /// the configured wait.
    pub async fn turn(&self) -> Result<Turn, DbError> {
        match tokio::time::timeout(self.connection_timeout(), self.turns.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Turn { permit, pool: self.pool.clone(), counters: self.counters.clone() }),
            _ => Err(timed_out()),
        }
    }

    /// Runs `f` with a connection on a blocking thread, after waiting for a turn (the sandbox
    /// stand-ins' way to their tables; request handlers go through `AppState::run`, which
    /// adds what a request needs). `Unavailable` when no turn came or the thread failed.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let turn = self.turn().await?;
        tokio::task::spawn_blocking(move || f(&mut *turn.connect()?))
            .await
            .map_err(|e| DbError::Unavailable(format!("a database turn's thread failed: {e}")))?
    }

    /// A turn and its connection, blocking the calling thread (start-up, the command line,
    /// tests; request paths use [`turn`](Self::turn)). `Unavailable` after the configured
    /// wait (answered as 503).
    pub fn get(&self) -> Result<PooledConn, DbError> {
        let deadline = std::time::Instant::now() + self.connection_timeout();
        let mut pause = std::time::Duration::from_micros(200);
        let permit = loop {
            match self.turns.clone().try_acquire_owned() {
                Ok(permit) => break permit,
                Err(TryAcquireError::Closed) => return Err(timed_out()),
                Err(TryAcquireError::NoPermits) if std::time::Instant::now() >= deadline => return Err(timed_out()),
                Err(TryAcquireError::NoPermits) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(10));
                }
            }
        };
        Turn { permit, pool: self.pool.clone(), counters: self.counters.clone() }.connect()
    }

    /// Statements and transactions this pool's connections sent so far, and the turns taken.
    pub fn counts(&self) -> DbCounts {
        self.counters.read()
    }

    /// Pool usage for metrics: (connections open, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    /// How long [`turn`](Self::turn) and [`get`](Self::get) wait for a turn (and the pool
    /// for a free connection).
    pub fn connection_timeout(&self) -> std::time::Duration {
        self.pool.connection_timeout()
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        run_migrations(&mut conn)
    }

    /// Whether the database answers and every embedded migration is applied.
    pub fn ready(&self) -> Result<(), DbError> {
        check_ready(&mut *self.get()?)
    }
}

/// The error of a turn not given in time.
fn timed_out() -> DbError {
    DbError::Unavailable("no database connection: timed out waiting".into())
}

/// Whether every embedded migration is applied on this connection's database.
pub fn check_ready(conn: &mut DbConn) -> Result<(), DbError> {
    let pending = match conn {
        DbConn::Pg(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    }
    .map_err(|e| DbError::Unavailable(format!("cannot read migrations: {e}")))?;
    if pending { Err(DbError::Unavailable("migrations pending".into())) } else { Ok(()) }
}

/// The advisory lock PostgreSQL migrations run under (any fixed number; "ncr-mig").
const MIGRATION_LOCK: i64 = 0x006e_6372_2d6d_6967;

/// Applies the embedded migrations of the connection's backend.
///
/// On PostgreSQL every pending migration runs in one transaction that first takes a
/// transaction-level advisory lock: when several instances start together on a new
/// database, the first migrates and the others wait, then find nothing pending (instead
/// of failing on a duplicate key in the migrations table). A transaction-level lock also
/// works through a pooler in transaction mode, where a session lock could be taken on
/// one server connection and released on another. (An embedded SQLite file has one
/// process.)
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, DbError> {
    let failed = |e: &dyn std::fmt::Display| DbError::Internal(format!("migration failed: {e}"));
    match conn {
        DbConn::Pg(c) => c.transaction(|c| {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .execute(c)
                .map_err(|e| failed(&e))?;
            c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()).map_err(|e| failed(&e))
        }),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()).map_err(|e| failed(&e)),
    }
}

/// Reverts applied migrations, newest first, through the one whose version is `version`
/// (its `down.sql` included); returns the versions reverted. For tests that replay a
/// migration over data written before it, and for operators rolling back.
pub fn revert_through(conn: &mut DbConn, version: &str) -> Result<Vec<String>, DbError> {
    let failed = |e: &dyn std::fmt::Display| DbError::Internal(format!("revert failed: {e}"));
    let mut reverted = Vec::new();
    loop {
        let v = match conn {
            DbConn::Pg(c) => c.revert_last_migration(POSTGRES_MIGRATIONS).map_err(|e| failed(&e))?,
            DbConn::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS).map_err(|e| failed(&e))?,
        }
        .to_string();
        let done = v.replace('-', "") == version.replace('-', "");
        reverted.push(v);
        if done {
            return Ok(reverted);
        }
    }
}

/// Names of all embedded migrations, for checking both folders stay in step.
pub fn migration_names(backend: Backend) -> Vec<String> {
    use diesel::migration::MigrationSource;
    let source = match backend {
        Backend::Postgres => POSTGRES_MIGRATIONS,
        Backend::Sqlite => SQLITE_MIGRATIONS,
    };
    MigrationSource::<diesel::pg::Pg>::migrations(&source)
        .map(|ms| ms.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

/// SQLite lets one connection write at a time. Left to itself, a connection that finds the
/// file locked sleeps in SQLite's busy handler (1, 2, 5 … 100 ms between tries), so under
/// load the database sits idle while writers sleep (issue 11: a journey's entry waited up
/// to 2 s). This process's writers queue here instead and are handed the lock at once.
/// After [`WRITER_WAIT`] a writer stops queueing and leaves it to SQLite's busy timeout,
/// so a writer waiting on itself (another pooled connection inside a transaction) fails
/// as before rather than hanging.
static SQLITE_WRITER: parking_lot::Mutex<()> = parking_lot::const_mutex(());
const WRITER_WAIT: Duration = Duration::from_secs(5);

/// Runs `f` in a write transaction. On SQLite the transaction starts `IMMEDIATE`, so a
/// read-then-write never fails half-way with "database is locked", after queueing for
/// this process's writer turn; on PostgreSQL it is a normal transaction (row locks and
/// conditional updates do the rest).
pub fn write_tx<T, E>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if let DbConn::Sqlite(inner) = conn {
        // Inside a write transaction already (a use case writing its statements in one):
        // its `BEGIN IMMEDIATE` holds the database and the writer turn.
        if sqlite_in_transaction(inner) {
            return f(conn);
        }
        let _turn = SQLITE_WRITER.try_lock_for(WRITER_WAIT);
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
        let result = f(conn);
        let DbConn::Sqlite(inner) = conn else { unreachable!("variant cannot change") };
        match result {
            Ok(v) => {
                if let Err(e) = AnsiTransactionManager::commit_transaction(inner) {
                    let _ = AnsiTransactionManager::rollback_transaction(inner);
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                AnsiTransactionManager::rollback_transaction(inner)?;
                Err(e)
            }
        }
    } else {
        conn.transaction(f)
    }
}

fn sqlite_in_transaction(conn: &mut SqliteConnection) -> bool {
    AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth().ok().flatten().is_some()
}

/// One write statement outside a transaction: on SQLite it takes its writer turn as
/// [`write_tx`] does; on PostgreSQL it simply runs (autocommit, no extra round trips).
pub fn single_write<T, E>(conn: &mut DbConn, f: impl FnOnce(&mut DbConn) -> Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(_) => write_tx(conn, f),
        DbConn::Pg(_) => f(conn),
    }
}

/// `SELECT 1`, for readiness.
pub fn ping(conn: &mut DbConn) -> Result<(), DbError> {
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ()).map_err(DbError::from)
}
