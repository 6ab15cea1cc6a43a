//! A rotation's writes on SQLite, its two `UPDATE`s as statements diesel keeps prepared.
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

use super::refresh_tokens::{Replacement, new_token};
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
struct MarkUsed {
    id: i64,
    at: i64,
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
struct Touch<'a> {
    id: i64,
    at: i64,
    ip: &'a str,
    user_agent: &'a str,
    key_version: i32,
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

/// The writes of a rotation (`refresh_tokens::rotate`): false, and nothing written, when the
/// token was used already.
pub fn rotate(conn: &mut SqliteConnection, r: &Replacement<'_>) -> QueryResult<bool> {
    let used = MarkUsed {
        id: r.token_id,
        at: r.now,
    };
    if used.execute(conn)? == 0 {
        return Ok(false);
    }
    diesel::insert_into(refresh_tokens::table)
        .values(new_token(
            r.session.id,
            r.successor_hash,
            Some(r.token_id),
            r.now,
        ))
        .execute(conn)?;
    Touch {
        id: r.session.id,
        at: r.now,
        ip: r.ip,
        user_agent: r.user_agent,
        key_version: r.session.key_version,
    }
    .execute(conn)?;
    Ok(true)
}
