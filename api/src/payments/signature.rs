//! HMAC-SHA256 with hex signatures, the primitive both providers use. Comparison is constant-time
//! (`Mac::verify_slice`): the provided hex is decoded first, and an undecodable value never matches.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::hex::{from_hex, to_hex};

type HmacSha256 = Hmac<Sha256>;

/// A MAC keyed with `key`. HMAC (RFC 2104) takes keys of any length, hashing long ones, so the hmac crate's
/// `new_from_slice` cannot fail for it: the `expect` states an invariant, not a risk.
fn keyed(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// HMAC-SHA256(`key`, parts concatenated).
pub fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed(key);
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Lowercase hex of HMAC-SHA256(`key`, `message`).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    to_hex(&hmac_sha256(key, &[message]))
}

/// Whether `signature_hex` (either case) is HMAC-SHA256(`key`, parts concatenated). The comparison of the
/// bytes is constant-time; a value that is not 64 hex digits is rejected.
pub fn verify_hex(key: &[u8], message: &[&[u8]], signature_hex: &str) -> bool {
    let Some(expected) = from_hex(signature_hex.trim()) else {
        return false;
    };
    if expected.len() != 32 {
        return false;
    }
    let mut mac = keyed(key);
    for part in message {
        mac.update(part);
    }
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_accepts_either_case_and_rejects_junk() {
        let sig = hmac_sha256_hex(b"k", b"ab");
        assert!(verify_hex(b"k", &[b"a", b"b"], &sig));
        assert!(verify_hex(b"k", &[b"ab"], &sig.to_uppercase()));
        assert!(!verify_hex(b"k", &[b"ab"], &sig[..62]));
        assert!(!verify_hex(b"k", &[b"ab"], &format!("{sig}00")));
        assert!(!verify_hex(b"k", &[b"ab"], "zz"));
        assert!(!verify_hex(b"k", &[b"ab"], ""));
        assert!(!verify_hex(b"other", &[b"ab"], &sig));
    }
}
