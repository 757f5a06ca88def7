//! The auth plugin and the catalog interface, parsed as keystoneauth does.

use std::fmt;
use std::str::FromStr;

use super::ConfigError;

/// Gives a closed enum its one canonical spelling: `as_str`, and a
/// `Display` that writes it. Parsing stays by hand, as each enum accepts
/// its own aliases.
macro_rules! spellings {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $spelling:literal,)* }) => {
        impl $name {
            $(#[$doc])*
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// Keystone v3 password (`password`, `v3password`).
    Password,
    /// Keystone v3 application credential (`v3applicationcredential`,
    /// `applicationcredential`).
    ApplicationCredential,
    /// Keystone v3 token (`token`, `v3token`). With `auth_url`, the token is
    /// exchanged for a scoped one (and a catalog); without `auth_url`, it is
    /// sent as is to the explicit `endpoint`.
    Token,
    /// No authentication at all (`none`, `noauth`): Neutron's noauth mode,
    /// with an explicit `endpoint`.
    NoAuth,
}

spellings! {
    /// The canonical keystoneauth plugin name.
    AuthType {
        Password => "password",
        ApplicationCredential => "v3applicationcredential",
        Token => "token",
        NoAuth => "none",
    }
}

impl FromStr for AuthType {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "password" | "v3password" => Ok(AuthType::Password),
            "v3applicationcredential" | "applicationcredential" => {
                Ok(AuthType::ApplicationCredential)
            }
            "token" | "v3token" => Ok(AuthType::Token),
            "none" | "noauth" => Ok(AuthType::NoAuth),
            _ => Err(ConfigError::UnknownAuthType(s.to_owned())),
        }
    }
}

/// Which catalog endpoint interface to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interface {
    /// `public` (the default).
    #[default]
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

spellings! {
    /// The catalog name of the interface.
    Interface {
        Public => "public",
        Internal => "internal",
        Admin => "admin",
    }
}

impl FromStr for Interface {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // keystoneauth also accepts the v2 spellings `publicURL` etc.
        let lower = s.trim().to_ascii_lowercase();
        match lower.strip_suffix("url").unwrap_or(&lower) {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            _ => Err(ConfigError::InvalidValue {
                option: "interface",
                value: s.to_owned(),
                expected: "public, internal or admin",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_type_names() {
        for (s, t) in [
            ("password", AuthType::Password),
            ("v3password", AuthType::Password),
            ("v3applicationcredential", AuthType::ApplicationCredential),
            ("applicationcredential", AuthType::ApplicationCredential),
            ("v3_application_credential", AuthType::ApplicationCredential),
            ("token", AuthType::Token),
            ("v3token", AuthType::Token),
            ("none", AuthType::NoAuth),
            ("noauth", AuthType::NoAuth),
            ("NoAuth", AuthType::NoAuth),
        ] {
            assert_eq!(s.parse::<AuthType>().unwrap(), t, "{s}");
        }
        let err = "saml".parse::<AuthType>().unwrap_err();
        assert!(err.to_string().contains("unknown auth_type \"saml\""));
    }

    #[test]
    fn interface_names() {
        assert_eq!("internal".parse::<Interface>().unwrap(), Interface::Internal);
        assert_eq!("publicURL".parse::<Interface>().unwrap(), Interface::Public);
        assert_eq!("ADMIN".parse::<Interface>().unwrap(), Interface::Admin);
        assert!("private".parse::<Interface>().is_err());
    }
}
