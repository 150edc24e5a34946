//! Small text helpers shared by the AWS adapters and the supervisor.

pub use scar_contract::text::percent_decode;

/// Encodes everything but unreserved characters (RFC 3986) as `%XX`, for query values.
#[must_use]
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
