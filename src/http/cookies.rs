//! The cookies doorman sets: names, attributes and lifetimes in one place.

use rocket::Request;
use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome};
use rocket::time::Duration;

use crate::config::Config;
use crate::core::client::ClientInfo;

/// Cookie names and attributes for this instance (`__Host-` names when `cookie_secure`).
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    secure: bool,
    refresh_ttl: i64,
    pub access: &'static str,
    pub refresh: &'static str,
    pub csrf: &'static str,
    pub notice: &'static str,
    pub device: &'static str,
    pub pending: &'static str,
}

impl From<&Config> for CookiePolicy {
    fn from(config: &Config) -> Self {
        let secure = config.cookie_secure;
        CookiePolicy {
            secure,
            refresh_ttl: config.refresh_ttl.as_i64(),
            access: if secure {
                "__Host-doorman_access"
            } else {
                "doorman_access"
            },
            refresh: if secure {
                "__Host-doorman_refresh"
            } else {
                "doorman_refresh"
            },
            csrf: if secure {
                "__Host-doorman_csrf"
            } else {
                "doorman_csrf"
            },
            notice: if secure {
                "__Host-doorman_notice"
            } else {
                "doorman_notice"
            },
            device: if secure {
                "__Host-doorman_device"
            } else {
                "doorman_device"
            },
            pending: if secure {
                "__Host-doorman_pending"
            } else {
                "doorman_pending"
            },
        }
    }
}

impl CookiePolicy {
    /// HttpOnly, SameSite=Lax, Path=/, no Domain; Secure unless turned off for plain-http dev.
    fn build(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .build()
    }

    /// The access and refresh cookies of a session. "Remember me" sessions survive the browser
    /// for `refresh_ttl`; others end with it.
    pub fn session(
        &self,
        access_jwt: String,
        refresh: String,
        remember: bool,
    ) -> [Cookie<'static>; 2] {
        let mut refresh = self.build(self.refresh, refresh);
        if remember {
            refresh.set_max_age(Duration::seconds(self.refresh_ttl));
        }
        [self.build(self.access, access_jwt), refresh]
    }

    /// A cookie that deletes `name` (same attributes, so `__Host-` removals are accepted).
    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        let mut cookie = self.build(name, String::new());
        cookie.make_removal();
        cookie
    }

    pub fn set_session(
        &self,
        jar: &CookieJar<'_>,
        access_jwt: String,
        refresh: String,
        remember: bool,
    ) {
        for cookie in self.session(access_jwt, refresh, remember) {
            jar.add(cookie);
        }
    }

    /// A new access token for the session this browser is in (its refresh cookie stays).
    pub fn set_access(&self, jar: &CookieJar<'_>, access_jwt: String) {
        jar.add(self.build(self.access, access_jwt));
    }

    pub fn clear_session(&self, jar: &CookieJar<'_>) {
        jar.add(self.removal(self.access));
        jar.add(self.removal(self.refresh));
    }

    /// Leaves a one-time message for the next page (post/redirect/get).
    pub fn set_notice(&self, jar: &CookieJar<'_>, notice: Notice) {
        jar.add(self.build(self.notice, notice.code().to_owned()));
    }

    /// The pending one-time message, removed as it is read.
    pub fn take_notice(&self, jar: &CookieJar<'_>) -> Option<Notice> {
        let code = jar.get(self.notice)?.value().to_owned();
        jar.add(self.removal(self.notice));
        Notice::parse(&code)
    }

    /// Marks this browser as a known device of the account that signed in (a year; each
    /// sign-in starts the year again).
    pub fn set_device(&self, jar: &CookieJar<'_>, token: String) {
        let mut cookie = self.build(self.device, token);
        cookie.set_max_age(Duration::days(365));
        jar.add(cookie);
    }

    /// A half-done login of this browser: gone with the browser, and after five minutes.
    pub fn set_pending(&self, jar: &CookieJar<'_>, token: String) {
        let mut cookie = self.build(self.pending, token);
        cookie.set_max_age(Duration::seconds(crate::core::pending_login::LIFETIME));
        jar.add(cookie);
    }

    pub fn pending_token(&self, jar: &CookieJar<'_>) -> Option<String> {
        jar.get(self.pending).map(|c| c.value().to_owned())
    }

    pub fn clear_pending(&self, jar: &CookieJar<'_>) {
        jar.add(self.removal(self.pending));
    }

    /// The known-device token this browser carries, if any.
    pub fn device_token(&self, jar: &CookieJar<'_>) -> Option<String> {
        jar.get(self.device).map(|c| c.value().to_owned())
    }
}

/// The client of a request and the known-device token it carries (unverified: the account
/// rules decide whether it names the account at hand): what a password check counts against.
pub struct ClientDevice {
    pub client: ClientInfo,
    pub device_token: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientDevice {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let device_token = req
            .rocket()
            .state::<CookiePolicy>()
            .and_then(|policy| policy.device_token(req.cookies()));
        Outcome::Success(ClientDevice {
            client: crate::http::client_guard::of(req),
            device_token,
        })
    }
}

impl CookiePolicy {
    pub fn set_csrf(&self, jar: &CookieJar<'_>, value: String) {
        jar.add(self.build(self.csrf, value));
    }
}

/// One-time messages. The cookie carries only a code, so no text from a client is ever shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    SignedOut,
    Welcome,
    SessionEnded,
    OtherSessionsEnded,
    PasswordChanged,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    UserSessionsEnded,
    SecondFactorsReset,
    SecondFactorRequired,
    SudoGranted,
    SignInExpired,
    AuthenticatorOff,
    PasskeyAdded,
    PasskeyRemoved,
    AddressSaved,
    AddressRemoved,
    PasswordReset,
    SessionReported,
    ResetSent,
}

impl Notice {
    const ALL: [Notice; 21] = [
        Notice::SignedOut,
        Notice::Welcome,
        Notice::SessionEnded,
        Notice::OtherSessionsEnded,
        Notice::PasswordChanged,
        Notice::RoleChanged,
        Notice::UserDisabled,
        Notice::UserEnabled,
        Notice::UserSessionsEnded,
        Notice::SecondFactorsReset,
        Notice::SecondFactorRequired,
        Notice::SudoGranted,
        Notice::SignInExpired,
        Notice::AuthenticatorOff,
        Notice::PasskeyAdded,
        Notice::PasskeyRemoved,
        Notice::AddressSaved,
        Notice::AddressRemoved,
        Notice::PasswordReset,
        Notice::SessionReported,
        Notice::ResetSent,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Notice::SignedOut => "signed_out",
            Notice::Welcome => "welcome",
            Notice::SessionEnded => "session_ended",
            Notice::OtherSessionsEnded => "other_sessions_ended",
            Notice::PasswordChanged => "password_changed",
            Notice::RoleChanged => "role_changed",
            Notice::UserDisabled => "user_disabled",
            Notice::UserEnabled => "user_enabled",
            Notice::UserSessionsEnded => "user_sessions_ended",
            Notice::SecondFactorsReset => "second_factors_reset",
            Notice::SecondFactorRequired => "second_factor_required",
            Notice::SudoGranted => "sudo_granted",
            Notice::SignInExpired => "sign_in_expired",
            Notice::AuthenticatorOff => "authenticator_off",
            Notice::PasskeyAdded => "passkey_added",
            Notice::PasskeyRemoved => "passkey_removed",
            Notice::AddressSaved => "address_saved",
            Notice::AddressRemoved => "address_removed",
            Notice::PasswordReset => "password_reset",
            Notice::SessionReported => "session_reported",
            Notice::ResetSent => "reset_sent",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Notice::SecondFactorRequired | Notice::SignInExpired => "error",
            _ => "success",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Notice::SignedOut => "You have signed out.",
            Notice::Welcome => "Welcome to doorman: your account is ready.",
            Notice::SessionEnded => "That session has ended; the device is signed out.",
            Notice::OtherSessionsEnded => "You are now signed out everywhere else.",
            Notice::PasswordChanged => {
                "Your password has changed. Your other sessions have been signed out."
            }
            Notice::RoleChanged => "The role has changed; it applies at once.",
            Notice::UserDisabled => "The account is disabled and all its sessions have ended.",
            Notice::UserEnabled => "The account is enabled again.",
            Notice::UserSessionsEnded => "The sessions have ended.",
            Notice::SecondFactorsReset => {
                "The second factors are removed and the user's sessions have ended."
            }
            Notice::SecondFactorRequired => {
                "Turn on a second factor before you use the admin pages."
            }
            Notice::SudoGranted => "Thank you. You can go on with what you were doing.",
            Notice::SignInExpired => "That sign-in has expired. Sign in again.",
            Notice::AuthenticatorOff => {
                "The authenticator app is off and its recovery codes are void."
            }
            Notice::PasskeyAdded => "The passkey is added. You can sign in with it.",
            Notice::PasskeyRemoved => "The passkey is removed.",
            Notice::AddressSaved => {
                "Saved. Open the link we mailed to the new address to confirm it."
            }
            Notice::AddressRemoved => "The email address is removed.",
            Notice::PasswordReset => {
                "Your password is set and every device is signed out. Sign in with the new password."
            }
            Notice::SessionReported => {
                "That session has ended. Choose a new password now, so that whoever it was cannot sign in again."
            }
            Notice::ResetSent => {
                "If the account has a confirmed address, a reset link is on its way."
            }
        }
    }

    fn parse(code: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|n| n.code() == code)
    }
}
