//! The account's owner acting on its own ways to sign in, through one of its sessions.

use diesel::result::Error as DieselError;

use crate::core::client::ClientInfo;
use crate::core::events::{self, EventKind};
use crate::db::{self, Tx};

/// The account's owner acting on its own ways to sign in (not an admin: `core::admin::Actor`),
/// for the events it records.
#[derive(Debug, Clone)]
pub struct Owner {
    pub user_id: i64,
    /// The acting session's public id.
    pub sid: String,
    pub client: ClientInfo,
}

impl Owner {
    pub(crate) fn record(
        &self,
        tx: &mut Tx<'_>,
        now: i64,
        kind: EventKind,
    ) -> Result<(), DieselError> {
        let session = db::sessions::find_by_public_id(tx, &self.sid)?.map(|s| s.id);
        events::record(tx, now, kind, Some(self.user_id), session, &self.client)
    }
}
