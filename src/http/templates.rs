//! The Tera engine with doorman's filters.

use std::collections::HashMap;

use rocket_dyn_templates::Template;
use rocket_dyn_templates::tera::{self, Value};

/// `{{ ts | datetime }}`: Unix seconds as `2026-12-02 14:05 UTC`.
fn datetime(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let seconds = value
        .as_i64()
        .ok_or_else(|| tera::Error::msg("datetime expects Unix seconds"))?;
    Ok(Value::String(crate::http::page::timestamp(seconds)))
}

pub fn fairing() -> impl rocket::fairing::Fairing {
    Template::custom(|engines| {
        engines.tera.register_filter("datetime", datetime);
    })
}
