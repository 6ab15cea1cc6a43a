//! Known devices: a browser (or app) that signed in to an account before carries a token naming
//! the account and itself, signed with the server secret. Its sign-in attempts are throttled per
//! device instead of by the account's counter, so failures from elsewhere never lock it out
//! (OWASP's device-cookie pattern). The token alone signs nobody in.

use crate::auth::keys::ServerSecret;
use crate::crypto;

/// A verified device token: which account it belongs to and which device it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    pub user_id: i64,
    pub device_id: String,
}

/// Longest token worth checking; real ones are about 80 characters.
const MAX_TOKEN_LEN: usize = 128;

impl KnownDevice {
    /// A new device of `user_id`.
    pub fn new(user_id: i64) -> KnownDevice {
        KnownDevice {
            user_id,
            device_id: crypto::random_token::<16>(),
        }
    }

    /// `<device id>.<user id>.<MAC>`: the ids are URL-safe base64 and digits, so `.` splits.
    pub fn token(&self, secret: &ServerSecret) -> String {
        format!(
            "{}.{}.{}",
            self.device_id,
            self.user_id,
            mac(secret, self.user_id, &self.device_id)
        )
    }

    /// The device a token names, when doorman signed it.
    pub fn verify(secret: &ServerSecret, token: &str) -> Option<KnownDevice> {
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
        let expected = mac(secret, user_id, device_id);
        crypto::constant_time_eq(expected.as_bytes(), presented.as_bytes()).then(|| KnownDevice {
            user_id,
            device_id: device_id.to_owned(),
        })
    }

    /// The device's token when it belongs to `user_id`.
    pub fn of_user(
        secret: &ServerSecret,
        token: Option<&str>,
        user_id: i64,
    ) -> Option<KnownDevice> {
        token
            .and_then(|t| KnownDevice::verify(secret, t))
            .filter(|d| d.user_id == user_id)
    }
}

fn mac(secret: &ServerSecret, user_id: i64, device_id: &str) -> String {
    crypto::b64url(&crypto::hmac_sha256(
        secret.device_key(),
        &[
            b"doorman/known-device/v1\0",
            user_id.to_string().as_bytes(),
            b"\0",
            device_id.as_bytes(),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_account_and_device_and_cannot_be_altered() {
        let secret = ServerSecret::from_bytes(&[7; 32]);
        let device = KnownDevice::new(42);
        let token = device.token(&secret);
        assert_eq!(KnownDevice::verify(&secret, &token), Some(device.clone()));
        assert_eq!(KnownDevice::of_user(&secret, Some(&token), 43), None);
        let other_user = token.replacen(".42.", ".43.", 1);
        assert_eq!(KnownDevice::verify(&secret, &other_user), None);
        let other_secret = ServerSecret::from_bytes(&[8; 32]);
        assert_eq!(KnownDevice::verify(&other_secret, &token), None);
        assert_eq!(KnownDevice::verify(&secret, "a.1"), None);
        assert_eq!(KnownDevice::verify(&secret, &format!("{token}.x")), None);
    }
}
