//! The JWKS key cache for RS256/ES256 tokens.
//!
//! Keys are fetched at start, trusted for `AIQUOTA_JWKS_REFRESH_S`, and fetched again when they are older or
//! when a token names a `kid` the cache does not know (key rotation), at most once every few seconds so a
//! flood of tokens with made-up `kid`s cannot turn into a flood of fetches. Only RSA keys (RS256) and P-256
//! keys (ES256) are kept, each with its algorithm, and a token must use its key's algorithm.
//!
//! A failed refresh keeps the keys, but not for ever: keys not confirmed by a successful fetch within
//! `AIQUOTA_JWKS_MAX_STALE_S` (default ten refresh intervals) are dropped, so a key the issuer revoked stops
//! working even while its JWKS cannot be reached (tokens are then answered 503 until a fetch succeeds).
//! The URL must be `https://`: the keys decide who is who, so they must not come over a channel anyone on the
//! path can rewrite. Plain `http://` is allowed only to a loopback host, for tests and local stand-ins.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
    Algorithm, DecodingKey,
};
use tokio::sync::{Mutex, RwLock};

use crate::auth::error::AuthError;

/// Shortest time between two fetches (after an unknown `kid`, or while fetches fail).
const MIN_REFETCH: Duration = Duration::from_secs(5);

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: Arc<DecodingKey>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Key>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
}

/// Fetches and caches the keys of one JWKS URL.
pub struct Jwks {
    url: String,
    refresh: Duration,
    max_stale: Duration,
    client: reqwest::Client,
    cache: RwLock<Cache>,
    fetching: Mutex<()>,
}

impl Jwks {
    /// A cache for `url` whose keys are trusted for `refresh`, and kept through failed refreshes for at
    /// most `max_stale` after the last successful fetch; nothing is fetched until
    /// [`Jwks::refresh_if_due`] or the first token.
    pub fn new(url: String, refresh: Duration, max_stale: Duration) -> Self {
        Self {
            url,
            refresh,
            max_stale,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            cache: RwLock::new(Cache::default()),
            fetching: Mutex::new(()),
        }
    }

    /// The key for a token's `kid` and `alg`.
    pub async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, AuthError> {
        let stale = {
            let c = self.cache.read().await;
            c.fetched_at.is_none_or(|t| t.elapsed() > self.refresh)
        };
        if stale {
            // Rate-limited too: while the JWKS is down, requests must not each wait for a failing fetch.
            self.refresh_if_due(MIN_REFETCH).await;
        }
        if let Some(k) = self.find(kid, alg).await {
            return Ok(k);
        }
        // Unknown kid: the issuer may have rotated its keys.
        self.refresh_if_due(MIN_REFETCH).await;
        if let Some(k) = self.find(kid, alg).await {
            return Ok(k);
        }
        let empty = self.usable_keys(&*self.cache.read().await).is_empty();
        Err(if empty {
            AuthError::KeysUnavailable
        } else {
            AuthError::BadSignature
        })
    }

    /// The cached keys, or none once they are older than `max_stale` (no successful fetch for that long).
    fn usable_keys<'c>(&self, c: &'c Cache) -> &'c [Key] {
        match c.fetched_at {
            Some(t) if t.elapsed() <= self.max_stale => &c.keys,
            _ => &[],
        }
    }

    async fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<Arc<DecodingKey>> {
        let c = self.cache.read().await;
        self.usable_keys(&c)
            .iter()
            .find(|k| k.alg == alg && (kid.is_none() || k.kid.as_deref() == kid))
            .map(|k| k.key.clone())
    }

    /// Fetches the keys unless another fetch happened within `min_gap`; a failure keeps the old keys, until
    /// they are older than `max_stale`, when they are dropped.
    pub async fn refresh_if_due(&self, min_gap: Duration) {
        let _one_at_a_time = self.fetching.lock().await;
        if let Some(t) = self.cache.read().await.attempted_at {
            if t.elapsed() < min_gap {
                return;
            }
        }
        self.cache.write().await.attempted_at = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched JWKS");
                let mut c = self.cache.write().await;
                c.keys = keys;
                c.fetched_at = Some(Instant::now());
            }
            Err(why) => {
                let mut c = self.cache.write().await;
                if c.fetched_at.is_some_and(|t| t.elapsed() > self.max_stale) && !c.keys.is_empty()
                {
                    c.keys.clear();
                    tracing::error!(%why, "could not fetch JWKS for longer than AIQUOTA_JWKS_MAX_STALE_S; dropped the cached keys");
                } else {
                    tracing::warn!(%why, "could not fetch JWKS; keeping the cached keys");
                }
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Key>, String> {
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok(set.keys.iter().filter_map(usable).collect())
    }
}

/// The algorithm a JWK may verify, from its `alg` or else its key type; `None` for keys we do not accept.
fn usable(jwk: &Jwk) -> Option<Key> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_))
        | (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(p))
        | (None, AlgorithmParameters::EllipticCurve(p))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key: Arc::new(key),
    })
}
