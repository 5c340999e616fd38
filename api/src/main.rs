//! `aiquota-api`: serve the HTTP API, or mint a development token.
//!
//! ```text
//! aiquota-api                      serve (configuration from AIQUOTA_* variables, see docs/http.md)
//! aiquota-api token --sub alice [--role authenticated] [--ttl 3600]
//! aiquota-api openapi              print the OpenAPI document
//! ```

use std::process::ExitCode;

use aiquota_api::{auth, App, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("token") => token(&args[1..]),
        Some("openapi") => {
            println!(
                "{}",
                aiquota_api::openapi().to_pretty_json().unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown command {other:?}; use serve, token or openapi");
            ExitCode::from(2)
        }
    }
}

async fn serve() -> ExitCode {
    let json = std::env::var("AIQUOTA_LOG_FORMAT").is_ok_and(|f| f == "json");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aiquota-api: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if config.jwt_issuer.is_none() {
        // Recommended, not required: without it any issuer holding the key or secret is believed.
        tracing::warn!("AIQUOTA_JWT_ISSUER is not set: tokens of any issuer signed with the configured keys are accepted");
    }
    tracing::info!(
        listen = %config.listen,
        database = %config.database_url_redacted(),
        hs256 = config.jwt_secret.is_some(),
        jwks = config.jwks_url.as_deref().unwrap_or("-"),
        audience = %config.jwt_audience,
        issuer = config.jwt_issuer.as_deref().unwrap_or("-"),
        deny_status = config.deny_status.as_u16(),
        user_writes = config.user_writes,
        razorpay = config.payments.razorpay_key_secret.is_some(),
        razorpay_webhooks = config.payments.razorpay_webhook_secret.is_some(),
        stripe_webhooks = config.payments.stripe_webhook_secrets.len(),
        "starting aiquota-api"
    );
    let app = match App::build(config).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("aiquota-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %app.local_addr(), "listening");
    match app.serve(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aiquota-api: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Mints an HS256 token with AIQUOTA_JWT_SECRET (and AIQUOTA_JWT_AUDIENCE / AIQUOTA_JWT_ISSUER).
fn token(args: &[String]) -> ExitCode {
    let mut sub = None;
    let mut role = "authenticated".to_string();
    let mut ttl: i64 = 3600;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it.next();
        match (a.as_str(), value) {
            ("--sub", Some(v)) => sub = Some(v.clone()),
            ("--role", Some(v)) => role = v.clone(),
            ("--ttl", Some(v)) => match v.parse() {
                Ok(t) if t > 0 => ttl = t,
                _ => return usage("--ttl takes a positive number of seconds"),
            },
            _ => return usage(&format!("unexpected argument {a:?}")),
        }
    }
    let Some(sub) = sub else {
        return usage("--sub is required");
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("aiquota-api token: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(secret) = &config.jwt_secret else {
        eprintln!(
            "aiquota-api token: AIQUOTA_JWT_SECRET is not set (only HS256 tokens can be minted)"
        );
        return ExitCode::from(2);
    };
    match auth::mint_hs256(
        secret.expose(),
        &sub,
        &role,
        &config.jwt_audience,
        config.jwt_issuer.as_deref(),
        ttl,
    ) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aiquota-api token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("aiquota-api token: {why}\nusage: aiquota-api token --sub USER [--role ROLE] [--ttl SECONDS]");
    ExitCode::from(2)
}
