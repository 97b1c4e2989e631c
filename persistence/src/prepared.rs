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

/// `<query> LIMIT 1`, the 1 written into the statement's text rather than bound as a
/// parameter (diesel's `.first()` binds it).
///
/// PostgreSQL plans a prepared statement for its parameters' values five times, then keeps
/// one generic plan if that plan is estimated no dearer. With the limit a parameter, the
/// generic plan of an ordered read that may match several rows (a citizen's applications,
/// newest cycle first) is estimated for a tenth of them, never looks cheap enough, and the
/// statement is planned again on every run: `pg_stat_statements` (`track_planning`) showed
/// the session-checking read of the current application spending 3.7 times longer in the
/// planner than in its execution. With `LIMIT 1` in the text the generic plan is kept.
/// After a `FOR UPDATE` (PostgreSQL takes the limit on either side of it).
#[derive(Debug, Clone, Copy)]
pub struct LimitOne<Q>(pub Q);

impl<Q, DB> QueryFragment<DB> for LimitOne<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT 1");
        Ok(())
    }
}

impl<Q: QueryId> QueryId for LimitOne<Q> {
    type QueryId = LimitOne<Q::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: Query> Query for LimitOne<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for LimitOne<Q> {}

/// Up to this many values a lookup is written `column = $1 OR column = $2 …` rather than
/// `column = ANY($1)`: PostgreSQL estimates an array of unknown length too dearly to keep a
/// generic plan (as it does a bound limit, [`LimitOne`]), and one text per count is few.
pub const FEW: usize = 4;

/// `.limit_one()` on a query: [`LimitOne`].
pub trait FirstRow: Sized {
    fn limit_one(self) -> LimitOne<Self> {
        LimitOne(self)
    }
}

impl<Q: Query> FirstRow for Q {}
