//! Signed, expiring pay links.
//!
//! A token is the URL-safe base64 (no padding) of
//! `version (1 byte) ‖ expiry as YYYYMMDD (u32, big endian) ‖ invoice id
//! (UTF-8) ‖ HMAC-SHA256 (32 bytes)`, the MAC being over a domain label and
//! everything before it. The link is valid through its expiry day. The key
//! comes from configuration, never from the repository.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Datelike, NaiveDate};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::PayLinkError;

type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;
const VERSION: u8 = 1;
const LABEL: &[u8] = b"proactive-collections/paylink\0";
const MAC_LEN: usize = 32;
const HEADER_LEN: usize = 5;
const PLACEHOLDER: &str = "{token}";

/// A genuine pay-link token that has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLink {
    pub invoice_id: String,
    /// The last day the link is valid.
    pub expires: NaiveDate,
}

/// Makes and verifies pay links.
#[derive(Clone)]
pub struct PayLinks {
    mac: HmacSha256,
    url_pattern: String,
}

impl std::fmt::Debug for PayLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayLinks")
            .field("key", &"<redacted>")
            .field("url_pattern", &self.url_pattern)
            .finish()
    }
}

impl PayLinks {
    /// `key`: at least 32 bytes of secret, not all blanks; `url_pattern`: a
    /// URL with `{token}`, e.g. `https://pay.example.com/i/{token}`.
    pub fn new(key: &[u8], url_pattern: &str) -> Result<PayLinks, PayLinkError> {
        if key.len() < MIN_KEY_LEN {
            return Err(PayLinkError::KeyTooShort {
                len: key.len(),
                min: MIN_KEY_LEN,
            });
        }
        if key.iter().all(u8::is_ascii_whitespace) {
            return Err(PayLinkError::BlankKey);
        }
        if !url_pattern.contains(PLACEHOLDER) {
            return Err(PayLinkError::BadPattern {
                pattern: url_pattern.to_string(),
            });
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|_| PayLinkError::KeyTooShort {
            len: key.len(),
            min: MIN_KEY_LEN,
        })?;
        Ok(PayLinks {
            mac,
            url_pattern: url_pattern.to_string(),
        })
    }

    /// The pay link of an invoice, valid through `expires`.
    pub fn link(&self, invoice_id: &str, expires: NaiveDate) -> String {
        self.url_pattern
            .replace(PLACEHOLDER, &self.token(invoice_id, expires))
    }

    /// The token alone (URL-safe).
    pub fn token(&self, invoice_id: &str, expires: NaiveDate) -> String {
        let mut raw = Vec::with_capacity(HEADER_LEN + invoice_id.len() + MAC_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&date_to_u32(expires).to_be_bytes());
        raw.extend_from_slice(invoice_id.as_bytes());
        let tag = self.signer(&raw).finalize().into_bytes();
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The invoice id of a genuine token that has not expired on `today`
    /// (see [`PayLinks::verify_link`], which also gives the expiry).
    pub fn verify(&self, token: &str, today: NaiveDate) -> Result<String, PayLinkError> {
        self.verify_link(token, today).map(|l| l.invoice_id)
    }

    /// What a payment page calls with the token of the link a customer
    /// followed: the invoice to show and the last day the link is valid,
    /// or why the token is refused — malformed, forged or altered (bad
    /// signature, also when signed with another key), or expired (which
    /// still names the invoice, so the page can offer a fresh link).
    /// Build the `PayLinks` with the key the sweep signs with; the URL
    /// pattern does not matter for verifying.
    ///
    /// ```
    /// use chrono::NaiveDate;
    /// use collect_delivery::message::{PayLinkError, PayLinks};
    ///
    /// let key = b"a-secret-of-at-least-32-bytes-from-the-vault";
    /// let links = PayLinks::new(key, "https://pay.example.com/invoice/{token}").unwrap();
    /// let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    /// // The sweep put this token in the customer's email.
    /// let token = links.token("INV-1001", day("2026-05-31"));
    ///
    /// // The payment page, on 2026-05-02:
    /// let link = links.verify_link(&token, day("2026-05-02")).unwrap();
    /// assert_eq!(link.invoice_id, "INV-1001");
    /// assert_eq!(link.expires, day("2026-05-31"));
    /// // After the expiry day, or with a forged token:
    /// assert!(matches!(
    ///     links.verify_link(&token, day("2026-06-01")),
    ///     Err(PayLinkError::Expired { .. })
    /// ));
    /// assert_eq!(
    ///     links.verify_link("AAAA", day("2026-05-02")),
    ///     Err(PayLinkError::Malformed)
    /// );
    /// ```
    pub fn verify_link(&self, token: &str, today: NaiveDate) -> Result<VerifiedLink, PayLinkError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| PayLinkError::Malformed)?;
        let (signed, tag) = raw
            .len()
            .checked_sub(MAC_LEN)
            .and_then(|at| raw.split_at_checked(at))
            .ok_or(PayLinkError::Malformed)?;
        let (header, id) = signed
            .split_at_checked(HEADER_LEN)
            .ok_or(PayLinkError::Malformed)?;
        let [version, d0, d1, d2, d3] = header else {
            return Err(PayLinkError::Malformed);
        };
        if *version != VERSION {
            return Err(PayLinkError::Malformed);
        }
        self.signer(signed)
            .verify_slice(tag)
            .map_err(|_| PayLinkError::BadSignature)?;
        let expires = date_from_u32(u32::from_be_bytes([*d0, *d1, *d2, *d3]))
            .ok_or(PayLinkError::Malformed)?;
        let invoice_id = String::from_utf8(id.to_vec()).map_err(|_| PayLinkError::Malformed)?;
        if today > expires {
            return Err(PayLinkError::Expired {
                invoice_id,
                expired_on: expires,
            });
        }
        Ok(VerifiedLink {
            invoice_id,
            expires,
        })
    }

    fn signer(&self, signed: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(LABEL);
        mac.update(signed);
        mac
    }
}

fn date_to_u32(d: NaiveDate) -> u32 {
    // Years outside 0..=9999 clamp; pay links expire within months.
    let year = d.year().clamp(0, 9999).unsigned_abs();
    year * 10_000 + d.month() * 100 + d.day()
}

fn date_from_u32(n: u32) -> Option<NaiveDate> {
    let year = i32::try_from(n / 10_000).ok()?;
    NaiveDate::from_ymd_opt(year, (n / 100) % 100, n % 100)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-key";

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn links() -> PayLinks {
        PayLinks::new(KEY, "https://pay.example.com/i/{token}").unwrap()
    }

    #[test]
    fn round_trip() {
        let links = links();
        let link = links.link("INV-2025/0042 ü", day("2025-04-30"));
        let token = link.strip_prefix("https://pay.example.com/i/").unwrap();
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(
            links.verify(token, day("2025-04-30")).unwrap(),
            "INV-2025/0042 ü"
        );
        assert_eq!(
            links.verify(token, day("2025-01-01")).unwrap(),
            "INV-2025/0042 ü"
        );
        // Deterministic.
        assert_eq!(link, links.link("INV-2025/0042 ü", day("2025-04-30")));
    }

    #[test]
    fn expired_is_rejected() {
        let links = links();
        let token = links.token("INV-1", day("2025-04-30"));
        assert_eq!(
            links.verify(&token, day("2025-05-01")),
            Err(PayLinkError::Expired {
                invoice_id: "INV-1".into(),
                expired_on: day("2025-04-30")
            })
        );
    }

    #[test]
    fn tampering_is_rejected() {
        let links = links();
        let token = links.token("INV-1", day("2025-04-30"));
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();

        // One character of the invoice id.
        let mut forged = raw.clone();
        forged[HEADER_LEN + 4] = b'2';
        let forged = URL_SAFE_NO_PAD.encode(&forged);
        assert_eq!(
            links.verify(&forged, day("2025-01-01")),
            Err(PayLinkError::BadSignature)
        );

        // A later expiry.
        raw[4] = raw[4].wrapping_add(1);
        assert_eq!(
            links.verify(&URL_SAFE_NO_PAD.encode(&raw), day("2025-01-01")),
            Err(PayLinkError::BadSignature)
        );

        // One character of the signature.
        let mut chars: Vec<char> = token.chars().collect();
        let i = chars.len() - 10;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        assert_eq!(
            links.verify(&altered, day("2025-01-01")),
            Err(PayLinkError::BadSignature)
        );
    }

    #[test]
    fn wrong_key_is_rejected() {
        let token = links().token("INV-1", day("2025-04-30"));
        let other = PayLinks::new(&[7u8; 32], "https://x/{token}").unwrap();
        assert_eq!(
            other.verify(&token, day("2025-01-01")),
            Err(PayLinkError::BadSignature)
        );
    }

    #[test]
    fn malformed_is_rejected() {
        let links = links();
        for bad in ["", "not base64!", "AAAA", &"A".repeat(60)] {
            assert_eq!(
                links.verify(bad, day("2025-01-01")),
                Err(PayLinkError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn configuration_is_checked() {
        assert!(matches!(
            PayLinks::new(&[1u8; 31], "https://x/{token}"),
            Err(PayLinkError::KeyTooShort { len: 31, .. })
        ));
        assert!(matches!(
            PayLinks::new(&[1u8; 32], "https://x/"),
            Err(PayLinkError::BadPattern { .. })
        ));
        assert_eq!(
            PayLinks::new(&[b' '; 32], "https://x/{token}").unwrap_err(),
            PayLinkError::BlankKey
        );
        assert_eq!(
            PayLinks::new(
                b" \t\n\r                                  ",
                "https://x/{token}"
            )
            .unwrap_err(),
            PayLinkError::BlankKey
        );
        assert!(PayLinks::new(b"                               x", "https://x/{token}").is_ok());
        assert!(!format!("{:?}", links()).contains("0123456789"));
    }
}
