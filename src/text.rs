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

/// True when `host` (a URL's host, IPv6 in brackets or not) is a loopback IP address, parsed
/// as one: plain HTTP is allowed only there. A name never counts (`localhost` may resolve
/// anywhere; `127.example.com` is a name).
#[must_use]
pub fn is_loopback_ip(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// True for a character an environment variable's value may not hold: NUL (it ends the value
/// where a process's environment is a list of C strings, and one sandbox argument where they
/// are NUL-separated) and the other control characters, but tab, line feed and carriage
/// return, which multi-line values (a certificate) hold.
#[must_use]
pub fn unsafe_in_env_value(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The first problem of an image configuration's `Env` entry (`KEY=value`) or working
/// directory, as a sentence; `None` when it is fine.
#[must_use]
pub fn image_env_problem(entry: &str) -> Option<String> {
    let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
    if key.is_empty() || key.chars().any(char::is_control) {
        return Some(format!("its Env entry {entry:?} has no usable name"));
    }
    value
        .chars()
        .any(unsafe_in_env_value)
        .then(|| format!("its Env entry {key} holds a control character"))
}
