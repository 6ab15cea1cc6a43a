//! Known devices: a browser (or app) that signed in to an account before carries a token naming
//! the account and itself, signed with the server secret. Its sign-in attempts are throttled per
//! device instead of by the account's counter, so failures from elsewhere never lock it out
//! (OWASP's device-cookie pattern). The token alone signs nobody in.
//!
//! The MAC covers the account's device epoch, which a password change, a reset, a second-factor
//! reset, a "this wasn't me" report or a disable moves: tokens issued before then name no known
//! device any more.

use crate::auth::keys::ServerSecret;
use crate::crypto;
use crate::db::users::UserRow;

/// A verified device token: which account it belongs to and which device it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    pub user_id: i64,
    pub device_id: String,
    /// The account's device epoch the token was issued in.
    epoch: i64,
}

/// Longest token worth checking; real ones are about 80 characters.
const MAX_TOKEN_LEN: usize = 128;

impl KnownDevice {
    /// A new device of `user`, in the account's current epoch.
    pub fn new(user: &UserRow) -> KnownDevice {
        KnownDevice::in_epoch(user.id, user.device_epoch)
    }

    fn in_epoch(user_id: i64, epoch: i64) -> KnownDevice {
        KnownDevice {
            user_id,
            device_id: crypto::random_token::<16>(),
            epoch,
        }
    }

    /// `<device id>.<user id>.<MAC>`: the ids are URL-safe base64 and digits, so `.` splits.
    pub fn token(&self, secret: &ServerSecret) -> String {
        format!(
            "{}.{}.{}",
            self.device_id,
            self.user_id,
            mac(secret, self.user_id, &self.device_id, self.epoch)
        )
    }

    /// The device a token names, when doorman signed it in the account's epoch `epoch`.
    fn verify(secret: &ServerSecret, token: &str, epoch: i64) -> Option<KnownDevice> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (Some(device_id), Some(user_id), Some(presented), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let user_id: i64 = user_id.parse().ok()?;
        let expected = mac(secret, user_id, device_id, epoch);
        crypto::constant_time_eq(expected.as_bytes(), presented.as_bytes()).then(|| KnownDevice {
            user_id,
            device_id: device_id.to_owned(),
            epoch,
        })
    }

    /// The device's token when it belongs to `user` and was issued in its current epoch.
    pub fn of_user(
        secret: &ServerSecret,
        token: Option<&str>,
        user: &UserRow,
    ) -> Option<KnownDevice> {
        KnownDevice::of_account(secret, token, user.id, user.device_epoch)
    }

    fn of_account(
        secret: &ServerSecret,
        token: Option<&str>,
        user_id: i64,
        epoch: i64,
    ) -> Option<KnownDevice> {
        token
            .and_then(|t| KnownDevice::verify(secret, t, epoch))
            .filter(|d| d.user_id == user_id)
    }
}

fn mac(secret: &ServerSecret, user_id: i64, device_id: &str, epoch: i64) -> String {
    let (user, since) = (user_id.to_string(), epoch.to_string());
    let mut parts: Vec<&[u8]> = vec![
        b"doorman/known-device/v1\0",
        user.as_bytes(),
        b"\0",
        device_id.as_bytes(),
    ];
    // Epoch 0 (no change yet) keeps the MAC tokens were issued with before epochs existed.
    if epoch != 0 {
        parts.extend([b"\0".as_slice(), since.as_bytes()]);
    }
    crypto::b64url(&crypto::hmac_sha256(secret.device_key(), &parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_account_and_device_and_cannot_be_altered() {
        let secret = ServerSecret::from_bytes(&[7; 32]);
        let device = KnownDevice::in_epoch(42, 0);
        let token = device.token(&secret);
        assert_eq!(
            KnownDevice::verify(&secret, &token, 0),
            Some(device.clone())
        );
        assert_eq!(KnownDevice::of_account(&secret, Some(&token), 43, 0), None);
        let other_user = token.replacen(".42.", ".43.", 1);
        assert_eq!(KnownDevice::verify(&secret, &other_user, 0), None);
        let other_secret = ServerSecret::from_bytes(&[8; 32]);
        assert_eq!(KnownDevice::verify(&other_secret, &token, 0), None);
        assert_eq!(KnownDevice::verify(&secret, "a.1", 0), None);
        assert_eq!(KnownDevice::verify(&secret, &format!("{token}.x"), 0), None);
    }

    #[test]
    fn a_token_of_an_earlier_epoch_names_no_device() {
        let secret = ServerSecret::from_bytes(&[7; 32]);
        let old = KnownDevice::in_epoch(42, 0).token(&secret);
        assert!(KnownDevice::of_account(&secret, Some(&old), 42, 1).is_none());
        let new = KnownDevice::in_epoch(42, 1);
        let token = new.token(&secret);
        assert_eq!(
            KnownDevice::of_account(&secret, Some(&token), 42, 1),
            Some(new)
        );
        assert!(KnownDevice::of_account(&secret, Some(&token), 42, 2).is_none());
    }
}
