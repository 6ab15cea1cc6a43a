//! Sending mail: the outbox (written by the rules in their transactions) is drained after each
//! commit and every few seconds by a sender task, which renders each letter from its Tera
//! templates and delivers it over SMTP or, without `smtp_url`, as an `.eml` file.

pub mod letters;
pub mod sender;
pub mod transport;
