//! A rotation's two `UPDATE`s on SQLite, as statements diesel keeps prepared (the rotation
//! itself is `rotation_writes`).
//!
//! diesel prepares every `UPDATE` of its own builder anew (its text may change with the values
//! of an `AsChangeset`); SQLite then parses and plans both statements on every rotation. These
//! two never change, so they are written as query fragments of their own, found in diesel's
//! statement cache by their type like its selects and inserts. Column names come from the
//! schema; values are bound parameters.

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{Column, QueryResult, RunQueryDsl};

use super::schema::{refresh_tokens, sessions};

/// `column = ?`, with `value` bound.
fn equals<'b, T, U>(
    out: &mut AstPass<'_, 'b, Sqlite>,
    column: &str,
    value: &'b U,
) -> QueryResult<()>
where
    Sqlite: HasSqlType<T>,
    U: ToSql<T, Sqlite> + ?Sized,
{
    out.push_identifier(column)?;
    out.push_sql(" = ");
    out.push_bind_param::<T, U>(value)
}

/// Marks live token `id` used at `at`; no row when it was used already.
#[derive(QueryId)]
pub(super) struct MarkUsed {
    pub id: i64,
    pub at: i64,
}

impl QueryFragment<Sqlite> for MarkUsed {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE refresh_tokens SET ");
        equals::<BigInt, _>(&mut out, refresh_tokens::used_at::NAME, &self.at)?;
        out.push_sql(" WHERE ");
        equals::<BigInt, _>(&mut out, refresh_tokens::id::NAME, &self.id)?;
        out.push_sql(" AND ");
        out.push_identifier(refresh_tokens::used_at::NAME)?;
        out.push_sql(" IS NULL");
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for MarkUsed {}

/// Records a rotation of session `id`: when, from where, and the key version of its successor.
pub(super) struct Touch<'a> {
    pub id: i64,
    pub at: i64,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub key_version: i32,
}

impl QueryFragment<Sqlite> for Touch<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("UPDATE sessions SET ");
        equals::<BigInt, _>(&mut out, sessions::last_used_at::NAME, &self.at)?;
        out.push_sql(", ");
        equals::<Text, _>(&mut out, sessions::last_ip::NAME, self.ip)?;
        out.push_sql(", ");
        equals::<Text, _>(&mut out, sessions::last_user_agent::NAME, self.user_agent)?;
        out.push_sql(", ");
        equals::<Integer, _>(&mut out, sessions::key_version::NAME, &self.key_version)?;
        out.push_sql(" WHERE ");
        equals::<BigInt, _>(&mut out, sessions::id::NAME, &self.id)?;
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for Touch<'_> {}

impl QueryId for Touch<'_> {
    type QueryId = Touch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}
