//! What a database keeps in clear (issue 24): scans a test server's whole database for
//! personal values — on SQLite the raw bytes of the database file and its write-ahead
//! log (so free space and not yet checkpointed pages count too), each hit attributed to
//! the table or index owning its page; on PostgreSQL every table dumped as text. Both
//! backends also dump every table as text through SQL (a value split over two SQLite
//! pages would escape a byte scan).
//!
//! Sandbox tables (the simulated registry, phone, mailbox and bank, which stand in for
//! systems outside the service) and their indexes are exempt.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::AhoCorasick;
use diesel::prelude::*;
use persistence::{Backend, DbConn};

use crate::TestApp;

/// The tables standing in for outside systems, which hold their own clear data.
pub const SANDBOX_TABLES: [&str; 5] =
    ["registry_people", "sandbox_mobile_owners", "sandbox_sms", "sandbox_emails", "sandbox_bank_payments"];

/// A personal value found in clear: where (table, or `<free>` for SQLite pages no table
/// owns, or `wal:` + table for a write-ahead log frame) and which value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub place: String,
    pub value: String,
}

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    t: String,
}

#[derive(QueryableByName)]
struct Page {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pageno: i64,
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    tbl_name: String,
}

fn texts(conn: &mut DbConn, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Text>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.t)
        .collect()
}

impl Hit {
    /// In a sandbox table (or its index, or a log frame of one).
    pub fn in_sandbox(&self) -> bool {
        SANDBOX_TABLES.contains(&self.place.strip_prefix("wal:").unwrap_or(&self.place))
    }
}

/// Every place the database keeps one of `values` in clear, sandbox tables included (see
/// [`Hit::in_sandbox`]).
pub async fn clear_values(app: &TestApp, values: &[String]) -> BTreeSet<Hit> {
    let db = app.state.db.clone();
    let backend = app.backend;
    let url = app.state.config.database_url.clone();
    let values = values.to_vec();
    tokio::task::spawn_blocking(move || {
        let finder = AhoCorasick::new(&values).expect("patterns");
        let mut conn = db.get().expect("conn");
        let mut hits = BTreeSet::new();
        let find_in = |place: &str, text: &[u8], hits: &mut BTreeSet<Hit>| {
            for m in finder.find_overlapping_iter(text) {
                hits.insert(Hit { place: place.to_owned(), value: values[m.pattern().as_usize()].clone() });
            }
        };
        // Every table as text.
        let tables = match backend {
            Backend::Postgres => texts(
                &mut conn,
                "SELECT table_name::text AS t FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            ),
            Backend::Sqlite => texts(&mut conn, "SELECT name AS t FROM sqlite_master WHERE type = 'table'"),
        };
        assert!(tables.iter().any(|t| t == "applications"), "{tables:?}");
        for table in &tables {
            let sql = match backend {
                Backend::Postgres => format!("SELECT x::text AS t FROM \"{table}\" x"),
                Backend::Sqlite => {
                    let columns = texts(&mut conn, &format!("SELECT name AS t FROM pragma_table_info('{table}')"));
                    let row = columns.iter().map(|c| format!("coalesce(quote(\"{c}\"), '')")).collect::<Vec<_>>();
                    format!("SELECT {} AS t FROM \"{table}\"", row.join(" || '|' || "))
                }
            };
            for row in texts(&mut conn, &sql) {
                find_in(table, row.as_bytes(), &mut hits);
            }
        }
        if backend == Backend::Sqlite {
            // The file and its write-ahead log, byte for byte; each page to its owner.
            let owners: BTreeMap<String, String> =
                diesel::sql_query("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")
                    .load::<Owner>(&mut conn)
                    .expect("owners")
                    .into_iter()
                    .map(|o| (o.name, o.tbl_name))
                    .collect();
            let pages: BTreeMap<i64, String> = diesel::sql_query("SELECT name, pageno FROM dbstat")
                .load::<Page>(&mut conn)
                .expect("dbstat (SQLITE_ENABLE_DBSTAT_VTAB)")
                .into_iter()
                .map(|p| {
                    let table = owners.get(&p.name).cloned().unwrap_or(p.name);
                    (p.pageno, table)
                })
                .collect();
            let page_size = diesel::sql_query("SELECT CAST(page_size AS TEXT) AS t FROM pragma_page_size")
                .load::<Text>(&mut conn)
                .expect("page size")[0]
                .t
                .parse::<usize>()
                .expect("number");
            let owner = |page: i64| pages.get(&page).cloned().unwrap_or_else(|| "<free>".into());
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(&url);
            let file = std::fs::read(path).expect("database file");
            for m in finder.find_overlapping_iter(&file) {
                let table = owner((m.start() / page_size) as i64 + 1);
                hits.insert(Hit { place: table, value: values[m.pattern().as_usize()].clone() });
            }
            let wal = std::fs::read(format!("{path}-wal")).unwrap_or_default();
            let frame = 24 + page_size;
            for m in finder.find_overlapping_iter(&wal) {
                let Some(at) = m.start().checked_sub(32) else { continue };
                let start = 32 + at / frame * frame;
                let page = u32::from_be_bytes(wal[start..start + 4].try_into().expect("4 bytes"));
                let table = owner(i64::from(page));
                hits.insert(Hit { place: format!("wal:{table}"), value: values[m.pattern().as_usize()].clone() });
            }
        }
        hits
    })
    .await
    .expect("join")
}
