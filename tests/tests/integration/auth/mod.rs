//! Who may call what: bearer tokens (HS256, RS256/ES256 via JWKS), server-only mode, and browsers (CORS, admin
//! API keys).

mod browser;
mod jwt;
mod server_only;
mod tokens;
