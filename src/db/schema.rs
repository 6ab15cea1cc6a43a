// Written by hand to match migrations/; kept backend-neutral (BigInt ids and Unix-second times).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        username_key -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        password_changed_at -> Nullable<BigInt>,
        totp_secret -> Nullable<Binary>,
        totp_enabled_at -> Nullable<BigInt>,
        totp_pending_secret -> Nullable<Binary>,
        totp_last_step -> Nullable<BigInt>,
        webauthn_id -> Nullable<Text>,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        email_verified_at -> Nullable<BigInt>,
        device_epoch -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        public_id -> Text,
        user_id -> BigInt,
        successor_key -> Binary,
        remember -> Bool,
        created_at -> BigInt,
        last_used_at -> BigInt,
        expires_at -> BigInt,
        first_ip -> Text,
        first_user_agent -> Text,
        last_ip -> Text,
        last_user_agent -> Text,
        ended_at -> Nullable<BigInt>,
        end_reason -> Nullable<Text>,
        access_not_before -> Nullable<BigInt>,
        key_version -> Integer,
        amr -> Text,
        auth_time -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> BigInt,
        session_id -> BigInt,
        token_hash -> Binary,
        parent_id -> Nullable<BigInt>,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    security_events (id) {
        id -> BigInt,
        created_at -> BigInt,
        user_id -> Nullable<BigInt>,
        session_id -> Nullable<BigInt>,
        kind -> Text,
        ip -> Text,
        user_agent -> Text,
        detail -> Nullable<Text>,
        repeats -> BigInt,
    }
}

diesel::table! {
    login_attempts (id) {
        id -> BigInt,
        scope -> Text,
        subject -> Text,
        attempted_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> BigInt,
        user_id -> BigInt,
        code_hash -> Binary,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    pending_logins (id) {
        id -> BigInt,
        token_hash -> Binary,
        user_id -> BigInt,
        remember -> Bool,
        next -> Nullable<Text>,
        failures -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    passkeys (id) {
        id -> BigInt,
        user_id -> BigInt,
        credential_id -> Binary,
        name -> Text,
        credential -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> BigInt,
        token_hash -> Binary,
        purpose -> Text,
        user_id -> Nullable<BigInt>,
        state -> Text,
        expires_at -> BigInt,
        binding -> Nullable<Binary>,
    }
}

diesel::table! {
    email_tokens (id) {
        id -> BigInt,
        token_hash -> Binary,
        purpose -> Text,
        user_id -> BigInt,
        email -> Nullable<Text>,
        session_id -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        recipient -> Text,
        template -> Text,
        context -> Text,
        created_at -> BigInt,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(security_events -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    refresh_tokens,
    security_events,
    login_attempts,
    recovery_codes,
    pending_logins,
    passkeys,
    webauthn_ceremonies,
    email_tokens,
    outbox
);
