//! The configuration's one error type and the value checks every section shares. A leaf: the sections
//! (`config/*.rs`) and the features that parse a value of their own import it, it imports nothing.

/// Why the configuration was refused; each message names the variable and what it should hold.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is set but its value is not usable.
    #[error("{name}: {why}")]
    Invalid { name: &'static str, why: String },
    /// Neither `AIQUOTA_JWT_SECRET` nor `AIQUOTA_JWKS_URL` is set: no token could ever be verified.
    #[error("set AIQUOTA_JWT_SECRET (HS256) and/or AIQUOTA_JWKS_URL (RS256/ES256): without one no token can be verified")]
    NoKeys,
}

/// A [`ConfigError::Invalid`] for `name`.
pub fn invalid(name: &'static str, why: String) -> ConfigError {
    ConfigError::Invalid { name, why }
}

/// A whole number within bounds (used for seconds, sizes and counts).
pub fn whole(name: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            format!("{value:?} must be a whole number from {min} to {max}"),
        )),
    }
}

/// An http(s) URL without a trailing slash (the value is not a secret, so it may appear in the message).
pub fn http_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim().trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(v.to_string()),
        _ => Err(invalid(name, format!("{value:?} is not an http(s) URL"))),
    }
}
