//! Queries of the `security_events` table.

use diesel::prelude::*;

use super::Conn;
use super::schema::{security_events, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = security_events)]
pub struct EventRow {
    pub id: i64,
    pub created_at: i64,
    pub user_id: Option<i64>,
    pub session_id: Option<i64>,
    pub kind: String,
    pub ip: String,
    pub user_agent: String,
    pub detail: Option<String>,
    pub repeats: i64,
}

#[derive(Insertable)]
#[diesel(table_name = security_events)]
pub struct NewEvent<'a> {
    pub created_at: i64,
    pub user_id: Option<i64>,
    pub session_id: Option<i64>,
    pub kind: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub detail: Option<&'a str>,
}

pub fn insert(conn: &mut Conn, event: &NewEvent<'_>) -> QueryResult<()> {
    diesel::insert_into(security_events::table)
        .values(event)
        .execute(conn)
        .map(drop)
}

/// Counts one more repeat on the latest event of `kind` for this user and address since
/// `since`; false when there is none.
pub fn count_repeat(
    conn: &mut Conn,
    kind: &str,
    user_id: Option<i64>,
    ip: &str,
    since: i64,
) -> QueryResult<bool> {
    let recent = security_events::table
        .filter(security_events::kind.eq(kind))
        .filter(security_events::ip.eq(ip))
        .filter(security_events::created_at.ge(since))
        .order(security_events::id.desc())
        .select(security_events::id);
    let latest = match user_id {
        Some(user) => recent
            .filter(security_events::user_id.eq(user))
            .first::<i64>(conn),
        None => recent
            .filter(security_events::user_id.is_null())
            .first::<i64>(conn),
    }
    .optional()?;
    let Some(id) = latest else {
        return Ok(false);
    };
    diesel::update(security_events::table.find(id))
        .set(security_events::repeats.eq(security_events::repeats + 1))
        .execute(conn)?;
    Ok(true)
}

pub fn delete_before(conn: &mut Conn, before: i64) -> QueryResult<usize> {
    diesel::delete(security_events::table.filter(security_events::created_at.lt(before)))
        .execute(conn)
}

/// A user's latest events, newest first.
pub fn latest_for_user(conn: &mut Conn, user_id: i64, limit: i64) -> QueryResult<Vec<EventRow>> {
    security_events::table
        .filter(security_events::user_id.eq(user_id))
        .order((
            security_events::created_at.desc(),
            security_events::id.desc(),
        ))
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

/// The users with events created at or after `since`.
pub fn users_since(conn: &mut Conn, since: i64) -> QueryResult<Vec<i64>> {
    security_events::table
        .filter(security_events::created_at.ge(since))
        .filter(security_events::user_id.is_not_null())
        .select(security_events::user_id.assume_not_null())
        .distinct()
        .load(conn)
}

/// How many events of one kind there are.
pub fn count_kind(conn: &mut Conn, kind: &str) -> QueryResult<i64> {
    security_events::table
        .filter(security_events::kind.eq(kind))
        .count()
        .get_result(conn)
}

/// One page of all events, newest first, with the username each belongs to.
pub fn page_with_usernames(
    conn: &mut Conn,
    offset: i64,
    limit: i64,
) -> QueryResult<Vec<(EventRow, Option<String>)>> {
    security_events::table
        .left_join(users::table)
        .order((
            security_events::created_at.desc(),
            security_events::id.desc(),
        ))
        .offset(offset)
        .limit(limit)
        .select((EventRow::as_select(), users::username.nullable()))
        .load(conn)
}

pub fn count(conn: &mut Conn) -> QueryResult<i64> {
    security_events::table.count().get_result(conn)
}

#[derive(Debug, QueryableByName)]
pub struct HourlyCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub hour: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// Counts of the given kinds per hour since `since` (hour 0 starts at `since`).
pub fn hourly_counts(conn: &mut Conn, since: i64, kinds: &[&str]) -> QueryResult<Vec<HourlyCount>> {
    use diesel::sql_types::{BigInt, Text};
    // Both SQLite and PostgreSQL divide integers by truncation.
    let mut counts = Vec::new();
    for kind in kinds {
        counts.extend(
            diesel::sql_query(
                "SELECT kind, (created_at - $1) / 3600 AS hour, COUNT(*) AS n \
                 FROM security_events WHERE created_at >= $1 AND kind = $2 \
                 GROUP BY kind, hour",
            )
            .bind::<BigInt, _>(since)
            .bind::<Text, _>(*kind)
            .load::<HourlyCount>(conn)?,
        );
    }
    Ok(counts)
}

/// How many events of each kind there are.
pub fn count_by_kind(conn: &mut Conn) -> QueryResult<Vec<(String, i64)>> {
    security_events::table
        .group_by(security_events::kind)
        .select((security_events::kind, diesel::dsl::count_star()))
        .load(conn)
}
