//! Statements kept prepared on the connection although diesel would not keep them (issue 21).
//!
//! diesel caches a prepared statement per connection for most queries, but never for an
//! `UPDATE`, an `ON CONFLICT … DO UPDATE`, a multi-row `INSERT` or raw SQL: those could
//! stand for an unbounded number of different statements, so each is parsed and planned
//! by the database every time it runs. On the hot path (the application's versioned
//! update, the seat taken, the guess counters, the combined writes of `app_write`) that
//! planning was a large part of PostgreSQL's CPU per journey.
//!
//! [`Prepared`] marks one such statement as safe to keep: diesel then caches it under its
//! SQL text and bind types. It is for statements whose text comes from a fixed set of
//! shapes — a changeset of a whole row, a fixed number of rows, a `WITH` of known parts —
//! never for text that grows with the input (an `IN` list of any length on SQLite, a
//! batch of any size), which would fill the connection's cache with one-off statements.
//! Behind a transaction-mode pooler the cache is off anyway (`DbSettings::pgbouncer`).

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// A statement diesel keeps prepared under its SQL text (see the module).
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

impl<Q, DB> QueryFragment<DB> for Prepared<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    // Keyed by the SQL text: the same Rust type can stand for several texts (a
    // changeset's skipped columns, a number of rows).
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Prepared<Q> {}

impl<Q> Prepared<Q> {
    /// Runs a statement that has no `RETURNING` of its own and answers how many rows it
    /// changed, as diesel's `execute` does. diesel's `execute` hands the connection a
    /// reference to the statement, and a reference answers "may this be cached" by walking
    /// the inner statement (which says no) — so this runs it as a query instead: the
    /// statement with `RETURNING 1`, its rows counted.
    pub fn execute<'q, Conn>(self, conn: &mut Conn) -> QueryResult<usize>
    where
        CountRows<Q>: diesel::query_dsl::LoadQuery<'q, Conn, i32>,
    {
        CountRows(self.0).load::<i32>(conn).map(|rows| rows.len())
    }
}

/// `<statement> RETURNING 1`, kept prepared (see [`Prepared::execute`]).
#[derive(Debug, Clone, Copy)]
pub struct CountRows<Q>(Q);

impl<Q, DB> QueryFragment<DB> for CountRows<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING 1");
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for CountRows<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for CountRows<Q> {
    type SqlType = diesel::sql_types::Integer;
}

impl<Q, Conn> RunQueryDsl<Conn> for CountRows<Q> {}

/// `.prepared()` on a statement: [`Prepared`].
pub trait KeepPrepared: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q> KeepPrepared for Q {}
