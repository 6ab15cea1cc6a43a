//! Password rules and hashing. bcrypt runs on threads of its own behind a semaphore of one slot
//! per core but one, at a lower priority than request handling, so a storm of logins queues
//! there and never starves pages.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rocket::tokio::sync::{Semaphore, oneshot};
use rocket::tokio::time::timeout;

use crate::crypto;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// How long a login may wait for a hashing slot before it is told to come back later.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much nicer than request threads hashing threads run (Linux): where they share a busy core,
/// pages keep most of it (measured on one core: `/profile` during 32 logins at 30 % of its rate
/// alone with hashing at the same priority, 59 % at +7, 68 % at +10), at the price of fewer
/// logins served meanwhile; alone on a core, hashing runs at full speed.
const HASHING_NICENESS: i32 = 7;

/// Why a new password is refused, in words for the form.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "Use at least {MIN_PASSWORD_CHARS} characters (this one has {chars})."
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "Use at most {MAX_PASSWORD_CHARS} characters (this one has {chars})."
        ));
    }
    Ok(())
}

/// bcrypt reads only 72 bytes, so every password is first reduced to a 44-byte digest: the whole
/// password counts, exactly as typed. The domain prefix keeps the digest from matching plain
/// SHA-256 hashes leaked from other systems.
fn prehash(password: &str) -> String {
    let digest = crypto::sha256(&[b"doorman/bcrypt-prehash/v1\0", password.as_bytes()].concat());
    STANDARD.encode(digest)
}

/// Hashes a password at `cost` on the calling thread (for the CLI and start-up).
///
/// # Errors
/// Only for a cost outside bcrypt's range, which the configuration already refuses.
pub fn hash_blocking(password: &str, cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::non_truncating_hash(prehash(password), cost)
}

/// Checks a password against a stored hash on the calling thread; a malformed hash never matches.
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    bcrypt::non_truncating_verify(prehash(password), hash).unwrap_or(false)
}

/// A well-formed bcrypt hash at `cost`, for unknown users: checking a password against it costs
/// what checking a real one does, and it never counts as a match (see `verify`), so nothing has
/// to be hashed at start (a quarter of a second at cost 12, seconds in a debug build).
fn dummy_hash(cost: u32) -> String {
    format!("$2b${cost:02}$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")
}

/// The cost of a bcrypt hash (`$2b$12$…`).
fn hash_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

/// Hashing could not be done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for too long.
    #[error("every password-hashing slot stayed busy")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

/// Hashing off the async workers: at most one bcrypt per core, with one core left free.
pub struct PasswordHasher {
    cost: u32,
    slots: Semaphore,
    /// A hash to verify against for unknown users, so they take as long as known ones.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> PasswordHasher {
        // One core is always left for everything else, so a login storm never starves pages.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        PasswordHasher {
            cost,
            slots: Semaphore::new(cores.saturating_sub(1).max(1)),
            dummy_hash: dummy_hash(cost),
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let cost = self.cost;
        self.with_slot(move || hash_blocking(&password, cost).map_err(|_| HashError::Failed))
            .await
    }

    /// Verifies against `hash`, or against a dummy hash when there is no user, so the answer
    /// takes the same time either way.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let exists = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .with_slot(move || Ok(verify_blocking(&password, &hash)))
            .await?;
        Ok(exists && matches)
    }

    /// Whether `hash` was made at another cost than the configured one, and should be made
    /// again at the next successful login (so hashes, and their timing, follow `bcrypt_cost`).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash_cost(hash) != Some(self.cost)
    }

    async fn with_slot<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _slot = timeout(QUEUE_TIMEOUT, self.slots.acquire())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Failed)?;
        let (answer, answered) = oneshot::channel();
        // A thread per hash: starting one costs microseconds against bcrypt's milliseconds,
        // and its priority is its own (lowering a pooled thread's could not be undone).
        std::thread::Builder::new()
            .name("doorman-hashing".into())
            .spawn(move || {
                lower_priority();
                let _ = answer.send(work());
            })
            .map_err(|_| HashError::Failed)?;
        answered.await.unwrap_or(Err(HashError::Failed))
    }
}

/// Makes the calling thread [`HASHING_NICENESS`] nicer; where that cannot be had it stays as it
/// is.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::nice(HASHING_NICENESS);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn hashing_runs_nicer_than_the_caller() {
        let runtime = rocket::tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let niceness = || rustix::process::getpriority_process(None).expect("own niceness");
        let caller = niceness();
        let hashing = runtime
            .block_on(PasswordHasher::new(4).with_slot(move || Ok(niceness())))
            .expect("hashed");
        assert_eq!(hashing, (caller + HASHING_NICENESS).min(19));
        assert_eq!(niceness(), caller, "the caller's own priority is untouched");
    }

    #[test]
    fn a_hash_at_another_cost_needs_rehashing() {
        let hasher = PasswordHasher::new(5);
        assert!(!hasher.needs_rehash(&dummy_hash(5)));
        assert!(hasher.needs_rehash(&dummy_hash(4)));
        assert!(hasher.needs_rehash("not a hash"));
    }

    #[test]
    fn the_dummy_hash_is_checked_at_full_cost() {
        let dummy = dummy_hash(4);
        assert!(
            bcrypt::non_truncating_verify(prehash("anything at all"), &dummy).is_ok(),
            "bcrypt accepts it, so the check runs instead of failing fast"
        );
        let real = hash_blocking("anything at all", 4).expect("hashing");
        assert_eq!(dummy.len(), real.len());
        assert_eq!(dummy[..7], real[..7], "same version and cost");
    }

    #[test]
    fn long_passwords_count_past_72_bytes() {
        let base = "é".repeat(40); // 80 bytes
        let hash = hash_blocking(&format!("{base}a"), 4).unwrap();
        assert!(verify_blocking(&format!("{base}a"), &hash));
        assert!(!verify_blocking(&format!("{base}b"), &hash));
        assert!(!verify_blocking(&base, &hash));
    }

    #[test]
    fn rules_count_characters_not_bytes() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(&"ü".repeat(12)).is_ok());
        assert!(check_new_password(&"🔑".repeat(64)).is_ok());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn the_digest_itself_is_not_the_password() {
        let password = "correct horse battery staple";
        let hash = hash_blocking(password, 4).unwrap();
        assert!(!verify_blocking(&prehash(password), &hash));
    }
}
