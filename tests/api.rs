//! The JSON API with bearer tokens, for every signing algorithm through the same test body,
//! plus key rotation, JWKS verification by a separate service, and forged-token defences.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::*;
use doorman::auth::roles::Role;
use doorman::config::JwtAlgorithm;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rocket::http::{ContentType, Header as HttpHeader, Method, Status};
use serde_json::{Value, json};

const ALGORITHMS: [JwtAlgorithm; 4] = [
    JwtAlgorithm::HS256,
    JwtAlgorithm::RS256,
    JwtAlgorithm::ES256,
    JwtAlgorithm::EdDSA,
];

struct Answer {
    status: Status,
    body: Value,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    content_type: Option<String>,
}

fn answer(response: rocket::local::blocking::LocalResponse<'_>) -> Answer {
    let header = |name: &str| response.headers().get_one(name).map(str::to_owned);
    let (www_authenticate, retry_after) = (header("WWW-Authenticate"), header("Retry-After"));
    let content_type = header("Content-Type");
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        www_authenticate,
        retry_after,
        content_type,
    }
}

fn post(app: &TestApp, path: &str, body: Value) -> Answer {
    answer(
        app.client
            .post(path.to_owned())
            .header(ContentType::JSON)
            .body(body.to_string())
            .dispatch(),
    )
}

/// A call with a bearer token.
fn bearer(app: &TestApp, method: Method, path: &str, token: &str) -> Answer {
    answer(
        app.client
            .req(method, path.to_owned())
            .header(HttpHeader::new("Authorization", format!("Bearer {token}")))
            .dispatch(),
    )
}

fn get(app: &TestApp, path: &str, token: &str) -> Answer {
    bearer(app, Method::Get, path, token)
}

fn delete(app: &TestApp, path: &str, token: &str) -> Answer {
    bearer(app, Method::Delete, path, token)
}

fn login(app: &TestApp, username: &str) -> (String, String) {
    let a = post(
        app,
        "/api/auth/login",
        json!({ "username": username, "password": PASSWORD }),
    );
    assert_eq!(a.status, Status::Ok, "{}", a.body);
    (
        a.body["access_token"].as_str().unwrap().to_owned(),
        a.body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn assert_error(a: &Answer, status: Status, code: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.body["code"], json!(code), "{}", a.body);
    assert!(a.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(
        a.content_type
            .as_deref()
            .unwrap_or_default()
            .contains("json")
    );
    if status == Status::Unauthorized {
        let challenge = a
            .www_authenticate
            .as_deref()
            .expect("WWW-Authenticate on 401");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        let token_problem = !matches!(code, "missing_token" | "invalid_credentials");
        assert_eq!(
            challenge.contains(r#"error="invalid_token""#),
            token_problem,
            "{challenge}"
        );
    }
}

/// An app signing with `algorithm` (a generated key for the asymmetric ones).
fn app_with(algorithm: JwtAlgorithm, extra: Value) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = json!({ "jwt_algorithm": algorithm });
    if algorithm != JwtAlgorithm::HS256 {
        let key = doorman::cli::keygen::generate(algorithm, &dir.path().join("keys")).unwrap();
        settings["jwt_key_file"] = json!(key.private);
    }
    if let (Value::Object(base), Value::Object(more)) = (&mut settings, extra) {
        base.extend(more);
    }
    TestApp::in_dir(dir, settings)
}

#[test]
fn the_api_works_the_same_for_every_algorithm() {
    for algorithm in ALGORITHMS {
        let app = app_with(algorithm, json!({}));
        app.create_user("alice", Role::User);
        app.create_user("root", Role::Admin);

        let a = post(
            &app,
            "/api/auth/login",
            json!({ "username": "alice", "password": PASSWORD }),
        );
        assert_eq!(a.status, Status::Ok, "{algorithm:?}: {}", a.body);
        assert_eq!(a.body["token_type"], json!("Bearer"));
        assert_eq!(a.body["expires_in"], json!(ACCESS_TTL));
        let access = a.body["access_token"].as_str().unwrap().to_owned();
        let refresh = a.body["refresh_token"].as_str().unwrap().to_owned();
        let header = jsonwebtoken::decode_header(&access).unwrap();
        assert_eq!(format!("{:?}", header.alg), format!("{algorithm:?}"));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));

        let me = get(&app, "/api/me", &access);
        assert_eq!(me.status, Status::Ok, "{algorithm:?}");
        assert_eq!(me.body["user"]["username"], json!("alice"));
        assert_eq!(me.body["user"]["role"], json!("user"));
        assert!(
            me.body["session"]["sid"].is_string() && me.body["session"]["last_seen_at"].is_string()
        );

        // JWKS: the public key (none for HS256), found by the token's kid.
        let jwks: Value = serde_json::from_str(
            &app.client
                .get("/.well-known/jwks.json")
                .dispatch()
                .into_string()
                .unwrap(),
        )
        .unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        if algorithm == JwtAlgorithm::HS256 {
            assert!(keys.is_empty());
        } else {
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0]["kid"].as_str(), header.kid.as_deref());
            assert!(keys[0].get("d").is_none(), "no private parts published");
        }

        // Expiry, refresh, the racing-tab grace, then reuse.
        app.clock.advance(ACCESS_TTL + 6);
        assert_error(
            &get(&app, "/api/me", &access),
            Status::Unauthorized,
            "token_expired",
        );
        let first = post(
            &app,
            "/api/auth/refresh",
            json!({ "refresh_token": refresh }),
        );
        assert_eq!(first.status, Status::Ok, "{}", first.body);
        let again = post(
            &app,
            "/api/auth/refresh",
            json!({ "refresh_token": refresh }),
        );
        assert_eq!(
            again.status,
            Status::Ok,
            "a racing refresh within the grace"
        );
        assert_eq!(
            again.body["refresh_token"], first.body["refresh_token"],
            "the same successor"
        );
        let access2 = first.body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(get(&app, "/api/me", &access2).status, Status::Ok);

        app.clock.advance(REUSE_GRACE + 1);
        assert_error(
            &post(
                &app,
                "/api/auth/refresh",
                json!({ "refresh_token": refresh }),
            ),
            Status::Unauthorized,
            "reuse_detected",
        );
        assert_error(
            &get(&app, "/api/me", &access2),
            Status::Unauthorized,
            "session_revoked",
        );
        assert_error(
            &post(
                &app,
                "/api/auth/refresh",
                json!({ "refresh_token": first.body["refresh_token"] }),
            ),
            Status::Unauthorized,
            "session_revoked",
        );

        // Sessions: list, end another one, and an unknown one.
        let (phone, _) = login(&app, "alice");
        let (laptop, laptop_refresh) = login(&app, "alice");
        let list = get(&app, "/api/sessions", &laptop);
        let sessions = list.body["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(
            sessions
                .iter()
                .filter(|s| s["current"] == json!(true))
                .count(),
            1
        );
        let phone_sid = get(&app, "/api/me", &phone).body["session"]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            delete(&app, &format!("/api/sessions/{phone_sid}"), &laptop).status,
            Status::NoContent
        );
        assert_error(
            &get(&app, "/api/me", &phone),
            Status::Unauthorized,
            "session_revoked",
        );
        assert_error(
            &delete(&app, "/api/sessions/nope", &laptop),
            Status::NotFound,
            "not_found",
        );

        // Admin only.
        assert_error(
            &get(&app, "/api/admin/users", &laptop),
            Status::Forbidden,
            "insufficient_role",
        );
        let (admin, _) = login(&app, "root");
        let users = get(&app, "/api/admin/users", &admin);
        assert_eq!(users.status, Status::Ok);
        assert_eq!(users.body["users"].as_array().unwrap().len(), 3);

        // Logout ends the session.
        let out = app
            .client
            .post("/api/auth/logout")
            .header(ContentType::JSON)
            .body(json!({ "refresh_token": laptop_refresh }).to_string())
            .dispatch();
        assert_eq!(out.status(), Status::NoContent);
        assert_error(
            &get(&app, "/api/me", &laptop),
            Status::Unauthorized,
            "session_revoked",
        );
        assert_error(
            &post(
                &app,
                "/api/auth/logout",
                json!({ "refresh_token": "unknown" }),
            ),
            Status::Unauthorized,
            "invalid_token",
        );
    }
}

#[test]
fn api_errors_are_json_with_their_codes() {
    let app = app_with(JwtAlgorithm::HS256, json!({ "login_max_failures": 2 }));
    app.create_user("alice", Role::User);

    let no_token = answer(app.client.get("/api/me").dispatch());
    assert_error(&no_token, Status::Unauthorized, "missing_token");
    assert_eq!(
        no_token.www_authenticate.as_deref(),
        Some(r#"Bearer realm="doorman""#)
    );
    assert_error(
        &get(&app, "/api/me", "not.a.token"),
        Status::Unauthorized,
        "invalid_token",
    );
    let basic = answer(
        app.client
            .get("/api/me")
            .header(HttpHeader::new("Authorization", "Basic YTpi"))
            .dispatch(),
    );
    assert_error(&basic, Status::Unauthorized, "invalid_token");

    // Cookies never authenticate the API.
    let mut browser = app.browser();
    browser.login("alice", PASSWORD, false);
    let mut req = app.client.get("/api/me");
    for (name, value) in &browser.cookies {
        req = req.cookie(rocket::http::Cookie::new(name.clone(), value.clone()));
    }
    assert_error(
        &answer(req.dispatch()),
        Status::Unauthorized,
        "missing_token",
    );

    assert_error(
        &post(
            &app,
            "/api/auth/login",
            json!({ "username": "alice", "password": "wrong one!" }),
        ),
        Status::Unauthorized,
        "invalid_credentials",
    );
    assert_error(
        &post(
            &app,
            "/api/auth/login",
            json!({ "username": "nobody", "password": "wrong one!" }),
        ),
        Status::Unauthorized,
        "invalid_credentials",
    );
    let throttled = post(
        &app,
        "/api/auth/login",
        json!({ "username": "alice", "password": PASSWORD }),
    );
    assert_error(&throttled, Status::TooManyRequests, "too_many_attempts");
    let retry: i64 = throttled.retry_after.unwrap().parse().unwrap();
    assert!(retry >= 1);

    for (content_type, body) in [
        (ContentType::JSON, "{not json"),
        (ContentType::JSON, r#"{"username": "alice"}"#),
        (ContentType::JSON, r#"{"username": 5, "password": []}"#),
        (ContentType::JSON, "[]"),
        (ContentType::JSON, "\u{0}\u{1}"),
    ] {
        let a = answer(
            app.client
                .post("/api/auth/login")
                .header(content_type)
                .body(body)
                .dispatch(),
        );
        assert_error(&a, Status::UnprocessableEntity, "invalid_input");
    }
    let form = answer(
        app.client
            .post("/api/auth/login")
            .header(ContentType::Form)
            .body("username=alice")
            .dispatch(),
    );
    assert_error(&form, Status::UnsupportedMediaType, "invalid_input");
    let huge = format!(
        r#"{{"username": "alice", "password": "{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let a = answer(
        app.client
            .post("/api/auth/login")
            .header(ContentType::JSON)
            .body(huge)
            .dispatch(),
    );
    assert_error(&a, Status::PayloadTooLarge, "invalid_input");
    assert_error(
        &answer(app.client.get("/api/nothing-here").dispatch()),
        Status::NotFound,
        "not_found",
    );
    let a = answer(
        app.client
            .get("/api/me")
            .header(HttpHeader::new("Authorization", "Bearer "))
            .dispatch(),
    );
    assert_error(&a, Status::Unauthorized, "invalid_token");
}

#[test]
fn a_separate_service_verifies_tokens_with_the_jwks_alone() {
    for algorithm in [
        JwtAlgorithm::RS256,
        JwtAlgorithm::ES256,
        JwtAlgorithm::EdDSA,
    ] {
        let app = app_with(algorithm, json!({}));
        app.create_user("alice", Role::User);
        let (access, _) = login(&app, "alice");
        let jwks: JwkSet = serde_json::from_str(
            &app.client
                .get("/.well-known/jwks.json")
                .dispatch()
                .into_string()
                .unwrap(),
        )
        .unwrap();

        // What another service does: pick the key by kid, pin the algorithm, check iss and aud.
        let kid = jsonwebtoken::decode_header(&access).unwrap().kid.unwrap();
        let jwk = jwks.find(&kid).expect("the token's key is published");
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let alg = match algorithm {
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::ES256 => Algorithm::ES256,
            _ => Algorithm::EdDSA,
        };
        let mut validation = Validation::new(alg);
        validation.set_issuer(&["doorman"]);
        validation.set_audience(&["doorman"]);
        let claims = jsonwebtoken::decode::<Value>(&access, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], json!("2"), "{algorithm:?}");
    }
}

#[test]
fn keys_rotate_without_signing_anyone_out() {
    let dir = tempfile::tempdir().unwrap();
    let old = doorman::cli::keygen::generate(JwtAlgorithm::ES256, dir.path()).unwrap();
    let new = doorman::cli::keygen::generate(JwtAlgorithm::ES256, dir.path()).unwrap();
    let app = TestApp::with(json!({ "jwt_algorithm": "ES256", "jwt_key_file": old.private }));
    app.create_user("alice", Role::User);
    let (access, refresh) = login(&app, "alice");
    let old_kid = jsonwebtoken::decode_header(&access).unwrap().kid.unwrap();

    // Step 2: the new key signs, the old public key is still accepted.
    let app = app.restart(json!({
        "jwt_algorithm": "ES256",
        "jwt_key_file": new.private,
        "jwt_previous_keys": [old.public.clone().unwrap()],
    }));
    assert_eq!(
        get(&app, "/api/me", &access).status,
        Status::Ok,
        "old tokens stay valid"
    );
    let jwks: Value = serde_json::from_str(
        &app.client
            .get("/.well-known/jwks.json")
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "current and previous published"
    );
    let renewed = post(
        &app,
        "/api/auth/refresh",
        json!({ "refresh_token": refresh }),
    );
    let new_access = renewed.body["access_token"].as_str().unwrap().to_owned();
    let new_kid = jsonwebtoken::decode_header(&new_access)
        .unwrap()
        .kid
        .unwrap();
    assert_ne!(new_kid, old_kid, "re-issued with the new key");
    assert_eq!(get(&app, "/api/me", &new_access).status, Status::Ok);

    // Step 3: the old key is removed; its tokens are refused.
    let app = app.restart(json!({ "jwt_algorithm": "ES256", "jwt_key_file": new.private }));
    assert_error(
        &get(&app, "/api/me", &access),
        Status::Unauthorized,
        "invalid_token",
    );
    assert_eq!(get(&app, "/api/me", &new_access).status, Status::Ok);
}

#[test]
fn browser_cookies_signed_by_a_retired_key_are_refreshed_silently() {
    let dir = tempfile::tempdir().unwrap();
    let old = doorman::cli::keygen::generate(JwtAlgorithm::EdDSA, dir.path()).unwrap();
    let new = doorman::cli::keygen::generate(JwtAlgorithm::EdDSA, dir.path()).unwrap();
    let app = TestApp::with(json!({ "jwt_algorithm": "EdDSA", "jwt_key_file": old.private }));
    app.create_user("alice", Role::User);
    let cookies = {
        let mut browser = app.browser();
        browser.login("alice", PASSWORD, false);
        browser.cookies.clone()
    };
    let app = app.restart(json!({ "jwt_algorithm": "EdDSA", "jwt_key_file": new.private }));
    let mut browser = app.browser();
    browser.cookies = cookies.clone();
    assert_eq!(
        browser.get("/profile").status,
        Status::Ok,
        "refreshed, no sign-in needed"
    );
    assert_ne!(browser.cookie(ACCESS), cookies.get(ACCESS).cloned());
}

/// Tokens an attacker could make, each refused as `invalid_token`.
#[test]
fn forged_bearer_tokens_are_refused() {
    let rsa = app_with(JwtAlgorithm::RS256, json!({}));
    rsa.create_user("alice", Role::User);
    let (genuine, _) = login(&rsa, "alice");
    let header = jsonwebtoken::decode_header(&genuine).unwrap();
    let kid = header.kid.clone().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&genuine)
        .unwrap()
        .claims;
    let jwks: Value = serde_json::from_str(
        &rsa.client
            .get("/.well-known/jwks.json")
            .dispatch()
            .into_string()
            .unwrap(),
    )
    .unwrap();
    let modulus = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let b64 = |v: &Value| doorman::crypto::b64url(v.to_string().as_bytes());
    let hs_header = |kid: &str| {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.into());
        h
    };

    let scratch = tempfile::tempdir().unwrap();
    let attacker = doorman::cli::keygen::generate(JwtAlgorithm::RS256, scratch.path()).unwrap();
    let attacker_key =
        EncodingKey::from_rsa_pem(&std::fs::read(&attacker.private).unwrap()).unwrap();
    let attacker_jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&attacker_key, Algorithm::RS256).unwrap();
    let sign = |h: &Header, c: &Value, k: &EncodingKey| jsonwebtoken::encode(h, c, k).unwrap();
    let rs_header = |kid: &str| {
        let mut h = Header::new(Algorithm::RS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(kid.into());
        h
    };

    let mut forged: Vec<(&str, String)> = vec![
        // Algorithm confusion: HMAC keyed with the public key material.
        (
            "HS256 keyed with the public modulus",
            sign(
                &hs_header(&kid),
                &claims,
                &EncodingKey::from_secret(modulus.as_bytes()),
            ),
        ),
        (
            "HS256 keyed with the JWKS entry",
            sign(
                &hs_header(&kid),
                &claims,
                &EncodingKey::from_secret(jwks["keys"][0].to_string().as_bytes()),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                b64(&claims)
            ),
        ),
        (
            "alg None",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "None", "typ": "at+jwt", "kid": kid})),
                b64(&claims)
            ),
        ),
        (
            "alg nOnE",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "nOnE", "typ": "at+jwt", "kid": kid})),
                b64(&claims)
            ),
        ),
        (
            "attacker's key, our kid",
            sign(&rs_header(&kid), &claims, &attacker_key),
        ),
        ("embedded jwk", {
            let mut h = rs_header(&kid);
            h.jwk = Some(attacker_jwk.clone());
            sign(&h, &claims, &attacker_key)
        }),
        ("jku", {
            let mut h = rs_header(&kid);
            h.jku = Some("https://evil.example/jwks.json".into());
            sign(&h, &claims, &attacker_key)
        }),
        ("x5u", {
            let mut h = rs_header(&kid);
            h.x5u = Some("https://evil.example/cert.pem".into());
            sign(&h, &claims, &attacker_key)
        }),
        (
            "kid path",
            sign(&rs_header("../../../../etc/passwd"), &claims, &attacker_key),
        ),
        (
            "kid sql",
            sign(&rs_header("' OR '1'='1' --"), &claims, &attacker_key),
        ),
        (
            "kid unknown",
            sign(&rs_header("unknown-key"), &claims, &attacker_key),
        ),
    ];
    // A genuine token with its signature replaced or its claims of the wrong JSON type.
    let parts: Vec<&str> = genuine.split('.').collect();
    forged.push((
        "zeroed signature",
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            doorman::crypto::b64url(&[0u8; 256])
        ),
    ));
    for (claim, value) in [
        ("exp", json!("9999999999")),
        ("nbf", json!("0")),
        ("exp", json!([1])),
        ("nbf", json!({})),
    ] {
        let mut bad = claims.clone();
        bad[claim] = value;
        forged.push((
            "claim of the wrong type",
            format!("{}.{}.{}", parts[0], b64(&bad), parts[2]),
        ));
    }
    assert_eq!(
        get(&rsa, "/api/me", &genuine).status,
        Status::Ok,
        "the control passes"
    );
    for (what, token) in &forged {
        let a = get(&rsa, "/api/me", token);
        assert_eq!(a.body["code"], json!("invalid_token"), "{what}");
        assert_error(&a, Status::Unauthorized, "invalid_token");
    }

    // ES256: the all-zero signature (CVE-2022-21449 shape) and an HS256 token against it.
    let es = app_with(JwtAlgorithm::ES256, json!({}));
    es.create_user("alice", Role::User);
    let (genuine, _) = login(&es, "alice");
    let parts: Vec<&str> = genuine.split('.').collect();
    let zero = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        doorman::crypto::b64url(&[0u8; 64])
    );
    assert_error(
        &get(&es, "/api/me", &zero),
        Status::Unauthorized,
        "invalid_token",
    );
    let es_kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let es_claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&genuine)
        .unwrap()
        .claims;
    let hs = sign(
        &hs_header(&es_kid),
        &es_claims,
        &EncodingKey::from_secret(&[1u8; 32]),
    );
    assert_error(
        &get(&es, "/api/me", &hs),
        Status::Unauthorized,
        "invalid_token",
    );

    // HS256 configured: an RS256 token with its kid, and an ES256 one, are refused.
    let hs_app = app_with(JwtAlgorithm::HS256, json!({}));
    hs_app.create_user("alice", Role::User);
    let (genuine, _) = login(&hs_app, "alice");
    let hs_kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let hs_claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&genuine)
        .unwrap()
        .claims;
    assert_error(
        &get(
            &hs_app,
            "/api/me",
            &sign(&rs_header(&hs_kid), &hs_claims, &attacker_key),
        ),
        Status::Unauthorized,
        "invalid_token",
    );
    let es_key = doorman::cli::keygen::generate(JwtAlgorithm::ES256, scratch.path()).unwrap();
    let mut es_header = Header::new(Algorithm::ES256);
    es_header.typ = Some("at+jwt".into());
    es_header.kid = Some(hs_kid);
    let es_token = sign(
        &es_header,
        &hs_claims,
        &EncodingKey::from_ec_pem(&std::fs::read(&es_key.private).unwrap()).unwrap(),
    );
    assert_error(
        &get(&hs_app, "/api/me", &es_token),
        Status::Unauthorized,
        "invalid_token",
    );
}

#[test]
fn keys_are_generated_with_safe_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys");
    for algorithm in ALGORITHMS {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args([
                "keys",
                "generate",
                "--algorithm",
                &format!("{algorithm:?}"),
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut private = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.to_string_lossy().ends_with(".pub.pem") {
            assert_eq!(mode, 0o644, "{}", path.display());
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
            private += 1;
        }
    }
    assert_eq!(private, 4);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(["keys", "generate", "--algorithm", "none", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}
