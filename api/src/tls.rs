//! TLS to PostgreSQL with rustls, honouring libpq's `sslmode` and `sslrootcert` in `AIQUOTA_DATABASE_URL`.
//!
//! tokio-postgres knows only `sslmode=disable|prefer|require` and no `sslrootcert`, so [`parse`] takes both
//! out of the connection string (URL `?sslmode=...&sslrootcert=...` or `key=value` form), hands the rest to
//! tokio-postgres, and chooses the certificate check itself, as libpq does:
//!
//! | `sslmode` | TLS | server certificate |
//! |---|---|---|
//! | `disable` | never (`NoTls`) | — |
//! | `prefer` (tokio-postgres' default) | when the server offers it | not checked (checked like `verify-ca` when `sslrootcert` is set) |
//! | `require` | always | not checked (checked like `verify-ca` when `sslrootcert` is set) |
//! | `verify-ca` | always | chain to a trusted root |
//! | `verify-full` | always | chain to a trusted root and the host name (or IP) in the certificate |
//!
//! The trusted roots are the PEM file `sslrootcert` names, or the system's (`sslrootcert=system`, or no
//! `sslrootcert` with a `verify-*` mode). Only `verify-full` stops a machine in the middle; the others
//! only encrypt (see docs/operations.md).

use std::sync::Arc;

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    client::WebPkiServerVerifier,
    crypto::{ring, CryptoProvider},
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `sslmode` values libpq accepts (`allow` is treated as `prefer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it; certificate unchecked unless `sslrootcert` is set.
    Prefer,
    /// Always TLS; certificate unchecked unless `sslrootcert` is set.
    Require,
    /// Always TLS; the chain must lead to a trusted root.
    VerifyCa,
    /// Always TLS; chain and host name are checked.
    VerifyFull,
}

/// A connection string split into what tokio-postgres understands and the TLS choice.
pub struct PgTarget {
    /// Everything but `sslmode` / `sslrootcert`, with tokio-postgres' own `ssl_mode` set to match.
    pub config: tokio_postgres::Config,
    /// The mode asked for.
    pub mode: Mode,
    /// The connector, `None` for `sslmode=disable` (then `NoTls` is used).
    pub tls: Option<MakeRustlsConnect>,
}

/// Parses `url` and builds its TLS connector; the error names what is wrong (never the password).
pub fn parse(url: &str) -> Result<PgTarget, String> {
    let (rest, mode, root) = split_ssl_options(url)?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| format!("{e}"))?;
    let mode = match mode.as_deref() {
        None | Some("prefer") | Some("allow") => Mode::Prefer,
        Some("disable") => Mode::Disable,
        Some("require") => Mode::Require,
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some(other) => {
            return Err(format!(
                "sslmode {other:?} is not disable, prefer, require, verify-ca or verify-full"
            ))
        }
    };
    // libpq: `sslrootcert=system` implies verify-full.
    let mode = if root.as_deref() == Some("system") && mode != Mode::Disable {
        Mode::VerifyFull
    } else {
        mode
    };
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let tls = match mode {
        Mode::Disable => None,
        _ => Some(MakeRustlsConnect::new(client_config(
            mode,
            root.as_deref(),
        )?)),
    };
    Ok(PgTarget { config, mode, tls })
}

/// The asynchronous messages (notifications, notices) of a connection, in order; it ends with the
/// connection.
pub type Messages = futures_util::stream::BoxStream<
    'static,
    Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
>;

/// One connection of its own to `url`, with the TLS its `sslmode` asks for (the `LISTEN` connection is
/// one): the client and the connection's messages. The connection runs only while the stream is polled,
/// so the caller drives it (and sees the notifications) by reading the stream.
pub async fn connect(url: &str) -> Result<(tokio_postgres::Client, Messages), String> {
    use futures_util::StreamExt;
    let target = parse(url)?;
    Ok(match target.tls {
        Some(tls) => {
            let (client, mut conn) = target
                .config
                .connect(tls)
                .await
                .map_err(|e| e.to_string())?;
            let messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            (client, messages.boxed())
        }
        None => {
            let (client, mut conn) = target
                .config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            (client, messages.boxed())
        }
    })
}

/// The rustls client configuration for `mode` with the roots of `root` (a PEM path, `system` or none).
fn client_config(mode: Mode, root: Option<&str>) -> Result<ClientConfig, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let check = match (mode, root) {
        (Mode::Prefer | Mode::Require, None) => Check::None,
        (Mode::Prefer | Mode::Require | Mode::VerifyCa, _) => Check::Chain,
        _ => Check::Full,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::None => Arc::new(Unchecked(provider)),
        Check::Chain | Check::Full => {
            let roots = Arc::new(roots(root)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("sslrootcert: {e}"))?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Chain,
    Full,
}

/// The trusted roots: the certificates of the PEM file `path`, or the system's.
fn roots(path: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match path {
        Some(p) if p != "system" => {
            let certs = CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("sslrootcert {p}: {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {p}: {e}"))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {p}: no certificate in the file"));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err("no system root certificates found; set sslrootcert".into());
            }
        }
    }
    Ok(store)
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query or a `key=value` string.
fn split_ssl_options(url: &str) -> Result<(String, Option<String>, Option<String>), String> {
    let (mut mode, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => mode = Some(percent_decode(v)?),
                "sslrootcert" => root = Some(percent_decode(v)?),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    let mut kept = Vec::new();
    for (key, value, raw) in key_values(url)? {
        match key.as_str() {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => kept.push(raw),
        }
    }
    Ok((kept.join(" "), mode, root))
}

/// The pairs of a libpq `key=value` string: key, unquoted value, and the pair's original text.
fn key_values(s: &str) -> Result<Vec<(String, String, String)>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            return Ok(out);
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!("connection string: {key:?} has no value"));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("connection string: unterminated quote".into()),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        out.push((key, value, chars[start..i].iter().collect()));
    }
}

fn percent_decode(v: &str) -> Result<String, String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = v.get(i + 1..i + 3).ok_or("bad percent-encoding")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent-encoding")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding is not UTF-8".into())
}

/// `verify-ca`: the chain must lead to a trusted root, the name is not checked (libpq's meaning).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` / `prefer` without `sslrootcert`: encryption only, any certificate (libpq's meaning). The
/// handshake signature is still checked, so the peer holds the key of the certificate it sent.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_options_come_out_of_both_forms() {
        let (rest, mode, root) = split_ssl_options(
            "postgres://u:p%40ss@db:5432/aiquota?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db:5432/aiquota?application_name=x"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, root) = split_ssl_options(
            "host=db user=u sslmode = verify-ca sslrootcert='/path with space/ca.pem' dbname=aiquota",
        )
        .unwrap();
        assert_eq!(rest, "host=db user=u dbname=aiquota");
        assert_eq!(mode.as_deref(), Some("verify-ca"));
        assert_eq!(root.as_deref(), Some("/path with space/ca.pem"));
        let (rest, mode, _) = split_ssl_options("postgres://u@db/aiquota").unwrap();
        assert_eq!((rest.as_str(), mode), ("postgres://u@db/aiquota", None));
    }

    #[test]
    fn modes_map_to_tokio_postgres() {
        let t = parse("host=db user=u sslmode=disable").unwrap();
        assert!(t.tls.is_none() && t.config.get_ssl_mode() == SslMode::Disable);
        let t = parse("host=db user=u").unwrap();
        assert_eq!(t.mode, Mode::Prefer);
        let t = parse("host=db user=u sslmode=require").unwrap();
        assert!(t.tls.is_some() && t.config.get_ssl_mode() == SslMode::Require);
        assert!(parse("host=db user=u sslmode=bogus").is_err());
        let err = parse("host=db sslmode=verify-full sslrootcert=/nonexistent/ca.pem")
            .err()
            .unwrap();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
