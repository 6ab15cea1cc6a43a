//! Where every way in ends: a password (with or without its second step), a passkey, a
//! sign-up — and the wings to come — start the session through one [`Finisher`], which also
//! hands back the device token to keep and tells of a new device. What signing in needs from
//! managed state is one [`Accounts`].

use diesel::result::Error as DieselError;

use crate::auth::keys::ServerSecret;
use crate::core::client::ClientInfo;
use crate::core::email::{self, EmailPolicy};
use crate::core::events;
use crate::core::known_device::KnownDevice;
use crate::core::passwords::PasswordHasher;
use crate::core::sessions::{self as session, Lifetimes, SignInMethod, Started};
use crate::core::throttle::{Reservation, Subjects, ThrottlePolicy};
use crate::db::{Db, Tx, users::UserRow};

/// What signing up and logging in need, taken from managed state (a request guard:
/// `http::guards`).
pub struct Accounts<'a> {
    pub db: &'a Db,
    pub hasher: &'a PasswordHasher,
    pub lifetimes: Lifetimes,
    pub throttle: ThrottlePolicy,
    pub secret: &'a ServerSecret,
    pub email: EmailPolicy,
}

impl Accounts<'_> {
    /// What a sign-in's last transaction needs, to move into it.
    pub(crate) fn finisher(&self) -> Finisher {
        Finisher {
            lifetimes: self.lifetimes,
            secret: self.secret.clone(),
            email: self.email,
        }
    }
}

/// A session started by a sign-in or a sign-up.
#[derive(Debug)]
pub struct SignedInSession {
    pub user: UserRow,
    pub started: Started,
    /// The known-device token of the browser or app that signed in.
    pub device_token: String,
}

/// Who signs in, and how.
pub(crate) struct SignIn<'a> {
    pub user: UserRow,
    pub remember: bool,
    pub method: SignInMethod,
    /// The browser's or app's device token of this account, when it brought a current one;
    /// `None` is a new device.
    pub known: Option<KnownDevice>,
    pub client: &'a ClientInfo,
}

/// Ends a sign-in: the one place a session starts for a person.
pub(crate) struct Finisher {
    lifetimes: Lifetimes,
    secret: ServerSecret,
    email: EmailPolicy,
}

impl Finisher {
    /// Starts the session (event `login_succeeded`) and hands back the device token to keep;
    /// from a device the account did not know, also `new_device_login` and its mail.
    pub fn finish(
        &self,
        tx: &mut Tx<'_>,
        sign_in: SignIn<'_>,
        now: i64,
    ) -> Result<SignedInSession, DieselError> {
        let SignIn {
            user,
            remember,
            method,
            known,
            client,
        } = sign_in;
        let started = session::start(tx, now, &self.lifetimes, &user, remember, client, method)?;
        let device = if let Some(device) = known {
            device
        } else {
            email::new_device(
                tx,
                &self.secret,
                self.email,
                &user,
                &started.session,
                client,
                now,
            )?;
            KnownDevice::new(&user)
        };
        Ok(SignedInSession {
            device_token: device.token(&self.secret),
            user,
            started,
        })
    }
}

/// Counts an attempt of `subjects`, or records that it was refused.
pub(crate) fn reserve_or_record(
    tx: &mut Tx<'_>,
    now: i64,
    throttle: &ThrottlePolicy,
    subjects: &Subjects,
    user: Option<&UserRow>,
    client: &ClientInfo,
) -> Result<Result<Reservation, i64>, DieselError> {
    let reserved = throttle.reserve(tx, now, subjects)?;
    if reserved.is_err() {
        events::record_throttled(tx, now, user.map(|u| u.id), client)?;
    }
    Ok(reserved)
}
