//! Second factors: the authenticator app (TOTP, RFC 6238: SHA-1, 6 digits, 30 s steps, one step
//! of drift either way, each code good once) and its single-use recovery codes.
//!
//! The app's secret is stored encrypted (AES-256-GCM under a key derived from the server
//! secret, bound to the account), so a copy of the database alone makes no codes.

use diesel::result::Error as DieselError;
use totp_rs::{Builder, Secret, Totp};

use crate::auth::keys::ServerSecret;
use crate::core::account_changes;
use crate::core::events::{self, EventKind};
use crate::core::owner::Owner;
use crate::core::sessions::{self as session, Ending};
use crate::crypto;
use crate::db::{self, Tx, users::UserRow};

/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// Letters and digits of a recovery code: 32 of them (no `0`, `1`, `l`, `o`), 5 bits each.
const CODE_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Characters of a recovery code (50 bits), shown as two groups of five.
const CODE_CHARS: usize = 10;

/// How a second step was proved, for the session's `amr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    AuthenticatorApp,
    RecoveryCode,
}

/// Whether an account asks for a second step after its password: it has an authenticator app
/// or a passkey.
pub fn is_on(conn: &mut db::Conn, user: &UserRow) -> Result<bool, DieselError> {
    Ok(user.totp_enabled_at.is_some() || db::passkeys::count_of_user(conn, user.id)? > 0)
}

/// What leads a stored secret that is encrypted; a secret stored as it is (before encryption)
/// is [`SECRET_BYTES`] long.
const SEALED_V1: u8 = 1;

fn sealing_context(user_id: i64) -> Vec<u8> {
    [
        b"doorman/totp-secret/v1\0".as_slice(),
        &user_id.to_be_bytes(),
    ]
    .concat()
}

/// An authenticator secret as the database keeps it.
fn seal(secret: &ServerSecret, user_id: i64, plain: &[u8]) -> Vec<u8> {
    let sealed = crypto::seal(secret.totp_key(), &sealing_context(user_id), plain);
    [&[SEALED_V1], sealed.as_slice()].concat()
}

/// The secret a stored value holds: decrypted, or as it is when stored before encryption.
/// `None` for a value made under another server secret or for another account.
fn open(secret: &ServerSecret, user_id: i64, stored: &[u8]) -> Option<Vec<u8>> {
    if stored.len() == SECRET_BYTES {
        return Some(stored.to_vec());
    }
    match stored.split_first() {
        Some((&SEALED_V1, sealed)) => {
            crypto::open(secret.totp_key(), &sealing_context(user_id), sealed)
        }
        _ => None,
    }
}

/// Encrypts the authenticator secrets stored before they were encrypted (run at start; the
/// query finds only those, so a start with none left reads no secret).
pub fn seal_stored_secrets(conn: &mut db::Conn, secret: &ServerSecret) -> Result<(), DieselError> {
    let plain = i32::try_from(SECRET_BYTES).unwrap_or(i32::MAX);
    for (user_id, enabled, pending) in db::second_factors::totp_secrets_of_length(conn, plain)? {
        let reseal = |stored: Option<Vec<u8>>| match stored {
            Some(s) if s.len() == SECRET_BYTES => Some(seal(secret, user_id, &s)),
            other => other,
        };
        let (enabled, pending) = (reseal(enabled), reseal(pending));
        db::second_factors::replace_totp_secrets(
            conn,
            user_id,
            (enabled.as_deref(), pending.as_deref()),
        )?;
    }
    Ok(())
}

fn totp(secret: &[u8]) -> Option<Totp> {
    Builder::new().with_secret(secret.to_vec()).build().ok()
}

/// What an authenticator app needs to be set up.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolment {
    /// The secret in base32, to type in.
    pub secret: String,
    /// The `otpauth://` URI, to scan.
    pub uri: String,
}

impl Enrolment {
    pub fn of(username: &str, secret: &[u8]) -> Enrolment {
        let secret = Secret::new(secret.into()).to_base32();
        Enrolment {
            uri: format!("otpauth://totp/doorman:{username}?secret={secret}&issuer=doorman"),
            secret,
        }
    }
}

/// The time step `code` is right for at `now`, if any (drift of one step either way).
pub fn totp_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = totp(secret)?.check(code, u64::try_from(now).ok()?)?;
    i64::try_from(step).ok()
}

/// The keyed hash a recovery code is stored as; `None` for text that cannot be one. Case,
/// spaces and dashes do not matter.
fn recovery_hash(secret: &ServerSecret, user_id: i64, code: &str) -> Option<[u8; 32]> {
    let normalized: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if normalized.len() != CODE_CHARS || !normalized.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
        return None;
    }
    Some(crypto::hmac_sha256(
        secret.recovery_key(),
        &[&user_id.to_be_bytes(), normalized.as_bytes()],
    ))
}

/// A new recovery code, as shown: `abcde-fghij`.
fn new_recovery_code() -> String {
    let bytes = crypto::random_bytes::<CODE_CHARS>();
    let mut code = String::with_capacity(CODE_CHARS + 1);
    for (i, b) in bytes.iter().enumerate() {
        if i == CODE_CHARS / 2 {
            code.push('-');
        }
        code.push(char::from(CODE_ALPHABET[usize::from(b & 31)]));
    }
    code
}

/// Replaces the user's recovery codes with a new set; returns the codes (shown once).
fn replace_recovery_codes(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    user_id: i64,
    now: i64,
) -> Result<Vec<String>, DieselError> {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let hashes: Vec<[u8; 32]> = codes
        .iter()
        .filter_map(|code| recovery_hash(secret, user_id, code))
        .collect();
    db::second_factors::replace_recovery_codes(tx, user_id, &hashes, now)?;
    Ok(codes)
}

/// Checks and spends a code typed for a second step: a 6-digit code of the user's app or one
/// of their recovery codes. A code is good once, also when two instances see it at the same
/// moment (the spending is a conditional update).
pub fn spend_code(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    user_id: i64,
    code: &str,
    now: i64,
) -> Result<Option<Proof>, DieselError> {
    let Some(totp_secret) = db::second_factors::totp_secret(tx, user_id)?
        .and_then(|stored| open(secret, user_id, &stored))
    else {
        return Ok(None);
    };
    if let Some(step) = totp_step(&totp_secret, code, now) {
        let spent = db::second_factors::spend_totp_step(tx, user_id, step)?;
        return Ok(spent.then_some(Proof::AuthenticatorApp));
    }
    match recovery_hash(secret, user_id, code) {
        Some(hash) => Ok(
            db::second_factors::spend_recovery_code(tx, user_id, &hash, now)?
                .then_some(Proof::RecoveryCode),
        ),
        None => Ok(None),
    }
}

/// Starts setting up an authenticator app: a new secret, kept (encrypted) until a code
/// confirms it.
pub fn start_enrolment(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    user: &UserRow,
) -> Result<Enrolment, DieselError> {
    let key = crypto::random_bytes::<SECRET_BYTES>();
    db::second_factors::set_totp_pending_secret(tx, user.id, &seal(secret, user.id, &key))?;
    Ok(Enrolment::of(&user.username, &key))
}

/// What a confirmation code did.
#[derive(Debug)]
pub enum Confirmed {
    /// The app is on; these recovery codes are shown once.
    On(Vec<String>),
    /// The code was wrong: nothing changed; the enrolment to try again with.
    WrongCode(Enrolment),
    /// No enrolment is under way (it was confirmed or replaced meanwhile).
    NotStarted,
}

/// Confirms an enrolment with a code of the new app: turns it on and makes recovery codes.
pub fn confirm_enrolment(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    user: &UserRow,
    owner: &Owner,
    code: &str,
    now: i64,
) -> Result<Confirmed, DieselError> {
    let Some(stored) = db::second_factors::totp_pending_secret(tx, user.id)? else {
        return Ok(Confirmed::NotStarted);
    };
    let Some(pending) = open(secret, user.id, &stored) else {
        return Ok(Confirmed::NotStarted);
    };
    let Some(step) = totp_step(&pending, code, now) else {
        return Ok(Confirmed::WrongCode(Enrolment::of(
            &user.username,
            &pending,
        )));
    };
    if !db::second_factors::enable_totp(tx, user.id, &stored, step, now)? {
        return Ok(Confirmed::NotStarted);
    }
    let codes = replace_recovery_codes(tx, secret, user.id, now)?;
    account_changes::outdate(tx, user.id, account_changes::SECOND_FACTORS, now)?;
    owner.record(tx, now, EventKind::MfaEnabled)?;
    Ok(Confirmed::On(codes))
}

/// Turns the authenticator app off and voids its recovery codes; returns whether it was on.
pub fn disable(tx: &mut Tx<'_>, owner: &Owner, now: i64) -> Result<bool, DieselError> {
    let was_on = db::second_factors::remove_totp(tx, owner.user_id)?;
    if was_on {
        account_changes::outdate(tx, owner.user_id, account_changes::SECOND_FACTORS, now)?;
        owner.record(tx, now, EventKind::MfaDisabled)?;
    }
    Ok(was_on)
}

/// A new set of recovery codes (the old ones void); `None` when the app is off.
pub fn regenerate_recovery_codes(
    tx: &mut Tx<'_>,
    secret: &ServerSecret,
    owner: &Owner,
    now: i64,
) -> Result<Option<Vec<String>>, DieselError> {
    if db::second_factors::totp_secret(tx, owner.user_id)?.is_none() {
        return Ok(None);
    }
    let codes = replace_recovery_codes(tx, secret, owner.user_id, now)?;
    account_changes::outdate(tx, owner.user_id, account_changes::SECOND_FACTORS, now)?;
    owner.record(tx, now, EventKind::RecoveryCodesRegenerated)?;
    Ok(Some(codes))
}

/// An admin (or the command line) removes every second factor of a user: the app, its
/// recovery codes, passkeys and half-done logins; every session of the user ends. Event
/// `mfa_reset`.
pub fn reset(
    tx: &mut Tx<'_>,
    user_id: i64,
    ending: &Ending<'_>,
) -> Result<Vec<String>, DieselError> {
    db::second_factors::remove_totp(tx, user_id)?;
    db::passkeys::delete_all_of_user(tx, user_id)?;
    account_changes::outdate(tx, user_id, account_changes::LOCKDOWN, ending.now)?;
    events::record_with(
        tx,
        ending.now,
        EventKind::MfaReset,
        Some(user_id),
        None,
        ending.client,
        ending.detail,
    )?;
    session::end_all_except(tx, user_id, None, ending)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors_with_one_step_of_drift() {
        // RFC 6238 appendix B, SHA-1, last six digits.
        assert_eq!(totp_step(SECRET, "287082", 59), Some(1));
        assert_eq!(totp_step(SECRET, "081804", 1_111_111_109), Some(37_037_036));
        // One step early and one late are accepted; two are not.
        assert_eq!(
            totp_step(SECRET, "081804", 1_111_111_109 + 30),
            Some(37_037_036)
        );
        assert_eq!(
            totp_step(SECRET, "081804", 1_111_111_109 - 30),
            Some(37_037_036)
        );
        assert_eq!(totp_step(SECRET, "081804", 1_111_111_109 + 60), None);
        for junk in ["", "28708", "2870823", "abcdef", "28 708"] {
            assert_eq!(totp_step(SECRET, junk, 59), None, "{junk:?}");
        }
    }

    #[test]
    fn recovery_codes_ignore_case_and_dashes_and_bind_the_user() {
        let secret = ServerSecret::from_bytes(&[7; 32]);
        let code = new_recovery_code();
        assert_eq!(code.len(), CODE_CHARS + 1);
        let hash = recovery_hash(&secret, 1, &code);
        assert!(hash.is_some());
        assert_eq!(
            recovery_hash(&secret, 1, &code.to_uppercase().replace('-', " ")),
            hash
        );
        assert_ne!(recovery_hash(&secret, 2, &code), hash);
        assert_eq!(recovery_hash(&secret, 1, "short"), None);
    }

    #[test]
    fn the_uri_names_the_account_and_issuer() {
        let enrolment = Enrolment::of("alice", SECRET);
        assert_eq!(enrolment.secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            enrolment.uri,
            "otpauth://totp/doorman:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=doorman"
        );
    }
}
