//! The Tera engine with doorman's filters.

use std::collections::HashMap;

use rocket_dyn_templates::Template;
use rocket_dyn_templates::tera::{self, Value};
use time::OffsetDateTime;
use time::macros::format_description;

/// `{{ ts | datetime }}`: Unix seconds as `2026-12-02 14:05 UTC`.
fn datetime(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let seconds = value
        .as_i64()
        .ok_or_else(|| tera::Error::msg("datetime expects Unix seconds"))?;
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(format).ok())
        .map(Value::String)
        .ok_or_else(|| tera::Error::msg("datetime out of range"))
}

pub fn fairing() -> impl rocket::fairing::Fairing {
    Template::custom(|engines| {
        engines.tera.register_filter("datetime", datetime);
    })
}
