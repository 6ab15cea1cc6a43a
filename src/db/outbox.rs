//! Queries of `outbox`: mail waiting to be sent, claimed by one instance at a time.

use diesel::prelude::*;

use super::Conn;
use super::schema::outbox;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct MailRow {
    pub id: i64,
    pub recipient: String,
    pub template: String,
    pub context: String,
    pub created_at: i64,
    pub attempts: i32,
    pub next_attempt_at: i64,
}

pub fn insert(
    conn: &mut Conn,
    recipient: &str,
    template: &str,
    context: &str,
    at: i64,
) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::recipient.eq(recipient),
            outbox::template.eq(template),
            outbox::context.eq(context),
            outbox::created_at.eq(at),
            outbox::next_attempt_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

/// The oldest mail due at `now`.
pub fn next_due(conn: &mut Conn, now: i64) -> QueryResult<Option<MailRow>> {
    outbox::table
        .filter(outbox::sent_at.is_null())
        .filter(outbox::next_attempt_at.le(now))
        .order(outbox::id.asc())
        .select(MailRow::as_select())
        .first(conn)
        .optional()
}

/// Claims a due mail until `lease_until` if nobody claimed it since it was read: true for one
/// instance.
pub fn claim(conn: &mut Conn, mail: &MailRow, lease_until: i64) -> QueryResult<bool> {
    diesel::update(
        outbox::table
            .find(mail.id)
            .filter(outbox::sent_at.is_null())
            .filter(outbox::next_attempt_at.eq(mail.next_attempt_at)),
    )
    .set(outbox::next_attempt_at.eq(lease_until))
    .execute(conn)
    .map(|n| n == 1)
}

/// Sent: the links' secrets are dropped from the stored context.
pub fn sent(conn: &mut Conn, id: i64, at: i64) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::sent_at.eq(at),
            outbox::context.eq("{}"),
            outbox::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(drop)
}

/// Not sent this time: try again at `next_attempt_at`.
pub fn failed(conn: &mut Conn, id: i64, next_attempt_at: i64, error: &str) -> QueryResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::last_error.eq(error),
        ))
        .execute(conn)
        .map(drop)
}

/// Mail not sent yet.
pub fn pending(conn: &mut Conn) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::sent_at.is_null())
        .count()
        .get_result(conn)
}
