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

/// The parts of `scheme://[userinfo@]host[...]`: the scheme with its `://`, the user
/// information before an `@` (a name, a password, a token), the host (and port), and the rest
/// from the first `/`, `?` or `#`; `None` for text with no `://`.
#[must_use]
pub fn url_parts(url: &str) -> Option<(&str, Option<&str>, &str, &str)> {
    let (scheme, rest) = url.split_at(url.find("://")? + 3);
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    Some(match authority.rsplit_once('@') {
        Some((userinfo, host)) => (scheme, Some(userinfo), host, tail),
        None => (scheme, None, authority, tail),
    })
}
