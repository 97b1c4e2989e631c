//! `persistence/src/schema.rs` must describe both migrated databases exactly: the same
//! tables, columns, types and nullability (what `diesel print-schema` would report).

use std::collections::BTreeMap;

use diesel::{Connection, QueryableByName, RunQueryDsl};
use ncr_tests::{Backend, spawn};

type Columns = BTreeMap<String, BTreeMap<String, (String, bool)>>;

/// Parses the `diesel::table!` blocks of schema.rs: table → column → (type, nullable).
fn declared() -> Columns {
    let text = include_str!("../../persistence/src/schema.rs");
    let mut out = Columns::new();
    let mut table: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{').map(str::trim)
            && let Some(name) = rest.split_whitespace().next()
            && rest.contains('(')
        {
            table = Some(name.to_owned());
            out.insert(name.to_owned(), BTreeMap::new());
        } else if let (Some(t), Some((col, ty))) = (&table, line.split_once("->")) {
            let ty = ty.trim().trim_end_matches(',');
            let (ty, nullable) = match ty.strip_prefix("Nullable<").and_then(|t| t.strip_suffix('>')) {
                Some(inner) => (inner, true),
                None => (ty, false),
            };
            out.get_mut(t).expect("table").insert(col.trim().to_owned(), (ty.to_owned(), nullable));
        } else if line == "}" {
            table = None;
        }
    }
    out
}

#[derive(QueryableByName)]
struct Col {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
}

fn portable(db_type: &str) -> String {
    match db_type.to_ascii_lowercase().as_str() {
        "text" | "character varying" => "Text",
        "bigint" | "int8" => "BigInt",
        "integer" | "int4" | "int" => "Integer",
        "boolean" | "bool" => "Bool",
        "date" => "Date",
        "timestamp" | "timestamp without time zone" => "Timestamp",
        other => return format!("unportable:{other}"),
    }
    .to_owned()
}

fn actual(backend: Backend, url: &str) -> Columns {
    let rows: Vec<Col> = match backend {
        Backend::Postgres => {
            let mut c = diesel::pg::PgConnection::establish(url).unwrap();
            diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type,
                        (is_nullable = 'YES') AS nullable
                   FROM information_schema.columns
                  WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
            )
            .load(&mut c)
            .unwrap()
        }
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap();
            let mut c = diesel::sqlite::SqliteConnection::establish(path).unwrap();
            diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type,
                        (p.\"notnull\" = 0 AND p.pk = 0) AS nullable
                   FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p
                  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '__diesel_schema_migrations'",
            )
            .load(&mut c)
            .unwrap()
        }
    };
    let mut out = Columns::new();
    for r in rows {
        out.entry(r.table_name).or_default().insert(r.column_name, (portable(&r.data_type), r.nullable));
    }
    out
}

async fn check(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let url = app.state.config.database_url.clone();
    let actual = tokio::task::spawn_blocking(move || actual(backend, &url)).await.unwrap();
    let declared = declared();
    assert!(!declared.is_empty());
    assert_eq!(
        declared.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "tables in schema.rs vs the migrated {} database",
        backend.as_str()
    );
    for (table, columns) in &declared {
        assert_eq!(columns, &actual[table], "table {table} on {}", backend.as_str());
    }
}

#[actix_web::test]
async fn schema_rs_matches_migrated_sqlite() {
    check(Backend::Sqlite).await;
}

#[actix_web::test]
async fn schema_rs_matches_migrated_postgres() {
    check(Backend::Postgres).await;
}
