//! What an account change ends of what was issued before it. A known-device token, a half-done
//! login or a reset link was handed out for the account as it was then; a change of its
//! password, second factors, address or state voids the ones it must, in the transaction of
//! the change, so no request after the commit can still use them.

use diesel::result::Error as DieselError;

use crate::db::{self, Tx};

/// Something issued for an account that a change can outdate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// Known-device tokens: throttled like unknown clients from now on.
    DeviceTokens,
    /// Logins waiting for their second step.
    PendingLogins,
    /// Password-reset links.
    ResetLinks,
}

/// A new password (changed, reset or set by an admin): nothing issued before it stands.
pub const PASSWORD: &[Issued] = &[
    Issued::DeviceTokens,
    Issued::PendingLogins,
    Issued::ResetLinks,
];

/// The account locked down (second factors reset by an admin, "this wasn't me", disabled).
pub const LOCKDOWN: &[Issued] = PASSWORD;

/// The authenticator app turned on or off, recovery codes or passkeys changed.
pub const SECOND_FACTORS: &[Issued] = &[Issued::PendingLogins];

/// A new (or no) email address.
pub const ADDRESS: &[Issued] = &[Issued::ResetLinks];

/// Voids what `change` outdates for `user_id`.
pub fn outdate(
    tx: &mut Tx<'_>,
    user_id: i64,
    change: &[Issued],
    now: i64,
) -> Result<(), DieselError> {
    for issued in change {
        match issued {
            Issued::DeviceTokens => db::users::bump_device_epoch(tx, user_id)?,
            Issued::PendingLogins => db::pending_logins::delete_for_user(tx, user_id)?,
            Issued::ResetLinks => {
                db::email::void_tokens(tx, user_id, db::email::purpose::RESET, now)?;
            }
        }
    }
    Ok(())
}
