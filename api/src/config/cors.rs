//! Origin lists (`AIQUOTA_CORS_ORIGINS`, `AIQUOTA_PROXY_CORS_ORIGINS`); [`crate::cors`] builds the layer.

use crate::config::error::ConfigError;

/// `*`, or a comma-separated list of origins like `https://app.example.com` (scheme, host, port; no path).
/// `name` is the variable, for the message.
pub fn parse_origins(name: &'static str, list: &str) -> Result<Vec<String>, ConfigError> {
    let origins: Vec<String> = list
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if origins == ["*"] {
        return Ok(origins);
    }
    if origins.is_empty() {
        return Err(ConfigError::Invalid {
            name,
            why: "names no origin".into(),
        });
    }
    for o in &origins {
        let host = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        let ok = host.is_some_and(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
        });
        if !ok {
            return Err(ConfigError::Invalid {
                name,
                why: format!(
                    "{o:?} is not an origin like https://app.example.com (or use * alone)"
                ),
            });
        }
    }
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use crate::config::cors::parse_origins;

    #[test]
    fn origins_are_checked() {
        const N: &str = "AIQUOTA_CORS_ORIGINS";
        assert_eq!(parse_origins(N, "*").unwrap(), ["*"]);
        assert_eq!(
            parse_origins(N, "https://a.example/, http://localhost:3000").unwrap(),
            ["https://a.example", "http://localhost:3000"]
        );
        for bad in [
            "a.example",
            "*, https://a.example",
            " , ",
            "https://a.example/app",
        ] {
            let e = parse_origins(N, bad).unwrap_err().to_string();
            assert!(e.contains(N), "{bad}: {e}");
        }
    }
}
