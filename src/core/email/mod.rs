//! Email: an account's address and its verification, password reset, and the notice of a
//! sign-in from a new device with its "this wasn't me" link.
//!
//! Every mail is a row of the outbox written in the transaction of the change it tells of; the
//! sender (`crate::mail`) delivers it after the commit. A link's token is never stored: the
//! outbox keeps a random nonce, and the token is the HMAC of that nonce under a key derived
//! from the server secret, made again when the mail is rendered. The database keeps only the
//! token's hash, so a copy of it (outbox included) opens no link.

mod addresses;
mod links;
mod notices;
mod resets;

pub use addresses::{Address, AddressChange, AddressError, parse_address, set_address, verify};
pub use links::{EmailPolicy, Letter, LinkKind, link_token, link_waiting};
pub use notices::{new_device, report, report_waiting};
pub use resets::{request_reset, reset_password, send_reset};
