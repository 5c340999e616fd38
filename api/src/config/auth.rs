//! The token part of the configuration: where signing keys may come from and the admin API keys' digests.

use crate::config::error::{invalid, ConfigError};

/// Whether `url` may serve signing keys: `https://`, or `http://` to a loopback host (`127.0.0.0/8`,
/// `[::1]`, `localhost`) for tests. The reason is returned for the configuration error.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("{url:?} is not an https URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "{url:?} must be https (plain http is allowed only to a loopback host)"
        ))
    }
}

/// Comma-separated SHA-256 digests in hex (64 characters each). Keys themselves are refused: the
/// environment should never hold one (`printf %s "$KEY" | sha256sum` gives the digest).
pub fn admin_key_hashes(list: &str) -> Result<Vec<[u8; 32]>, ConfigError> {
    let mut out = Vec::new();
    for (i, item) in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let digest = crate::hex::from_hex(item)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            // The item is not quoted: it may be a key pasted by mistake.
            .ok_or_else(|| {
                invalid(
                    "AIQUOTA_ADMIN_KEYS",
                    format!("item {} is not a SHA-256 digest (64 hex characters)", i + 1),
                )
            })?;
        out.push(digest);
    }
    if out.is_empty() {
        return Err(invalid("AIQUOTA_ADMIN_KEYS", "names no digest".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::auth::check_url;

    #[test]
    fn jwks_url_is_https_or_loopback() {
        for ok in [
            "https://example.supabase.co/auth/v1/.well-known/jwks.json",
            "http://127.0.0.1:9999/jwks.json",
            "http://127.8.0.1/jwks.json",
            "http://localhost:80/jwks",
            "http://[::1]:8080/jwks",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/jwks.json",
            "http://127.0.0.1.example.com/jwks.json",
            "http://localhost.evil.test/jwks",
            "http://127.0.0.1@evil.test/jwks",
            "ftp://127.0.0.1/jwks",
            "https://",
            "example.com",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
