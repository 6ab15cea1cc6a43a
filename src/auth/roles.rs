//! Roles: what an account may do beyond its own pages.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        [Role::Admin, Role::User]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}
