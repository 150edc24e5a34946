//! Image references (`grycap/imagemagick`, `ghcr.io/o/r:1.2`, `repo@sha256:...`) and where
//! each registry is served.

use std::collections::BTreeMap;
use std::fmt;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub serves the registry API.
const DOCKER_HUB_API: &str = "https://registry-1.docker.io";

/// Overrides of where a registry is served: `host=URL` pairs, comma-separated. Lets a
/// registry mirror stand in for Docker Hub, and a local registry stand in for ECR on an AWS
/// emulator that does not serve the registry API (moto).
pub const ENDPOINTS_ENV: &str = "SCAR_REGISTRY_ENDPOINTS";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (with port), `docker.io` for Docker Hub.
    pub registry: String,
    /// The repository path (`library/alpine`).
    pub repository: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest, if pinned.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference the way Docker does: a first path segment with a `.` or `:`, or
    /// `localhost`, is a registry; otherwise the image is on Docker Hub, where one-segment
    /// names live under `library/`.
    ///
    /// # Errors
    /// A message saying what is wrong with `s`.
    pub fn parse(s: &str) -> Result<ImageRef, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an image reference is empty".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("`{s}`: a digest is `sha256:` and 64 hex digits"));
                }
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), rest.to_owned()),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_owned(), Some(t.to_owned())),
            _ => (path, None),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let valid = |c: char| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '/' | '.' | '_' | '-')
        };
        if repository.is_empty() || !repository.chars().all(valid) {
            return Err(format!(
                "`{s}`: a repository name has lowercase letters, digits and / . _ - only"
            ));
        }
        if let Some(t) = &tag
            && (t.is_empty()
                || t.len() > 128
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!("`{s}`: `{t}` is not a valid tag"));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest when pinned, else the tag, else `latest`.
    #[must_use]
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository, pinned to `digest`.
    #[must_use]
    pub fn at_digest(&self, digest: &str) -> ImageRef {
        ImageRef {
            tag: None,
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// `registry/repository`, the name without tag or digest.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Where each registry host is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    overrides: BTreeMap<String, String>,
}

impl Endpoints {
    /// The overrides in [`ENDPOINTS_ENV`], if set.
    ///
    /// # Errors
    /// When the variable is malformed.
    pub fn from_env() -> Result<Endpoints, String> {
        match std::env::var(ENDPOINTS_ENV) {
            Ok(v) => Endpoints::parse(&v),
            Err(_) => Ok(Endpoints::default()),
        }
    }

    /// Parses `host=URL,host=URL`.
    ///
    /// # Errors
    /// When a pair is not `host=http(s)://...`.
    pub fn parse(v: &str) -> Result<Endpoints, String> {
        let mut overrides = BTreeMap::new();
        for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((host, url)) = pair.split_once('=') else {
                return Err(format!("{ENDPOINTS_ENV}: `{pair}` is not host=URL"));
            };
            if let Some(problem) = insecure_url_problem(url) {
                return Err(format!("{ENDPOINTS_ENV}: {problem}"));
            }
            overrides.insert(host.trim().to_owned(), url.trim_end_matches('/').to_owned());
        }
        Ok(Endpoints { overrides })
    }

    /// The base URL of `registry`'s API: an override, Docker Hub's API host, plain HTTP for a
    /// registry on a loopback IP address, HTTPS otherwise.
    #[must_use]
    pub fn url(&self, registry: &str) -> String {
        if let Some(u) = self.overrides.get(registry) {
            return u.clone();
        }
        if registry == DOCKER_HUB {
            return DOCKER_HUB_API.to_owned();
        }
        let host = registry
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(registry, |(h, _)| h);
        if crate::text::is_loopback_ip(host) {
            format!("http://{registry}")
        } else {
            format!("https://{registry}")
        }
    }

    /// True when `registry` is served somewhere other than its own name (a mirror, or a local
    /// registry standing in for ECR).
    #[must_use]
    pub fn is_overridden(&self, registry: &str) -> bool {
        self.overrides.contains_key(registry)
    }
}

/// True for an Amazon ECR private registry host, by AWS's exact grammar:
/// `<12 digits>.dkr.ecr[-fips].<region>.amazonaws.com`, the China partition's
/// `...amazonaws.com.cn`, and the dual-stack `<12 digits>.dkr-ecr[-fips].<region>.on.aws`. No
/// port, nothing before or after: a name that merely contains these parts
/// (`...amazonaws.com.attacker.example`) is not ECR and is never sent an ECR token.
#[must_use]
pub fn is_ecr(registry: &str) -> bool {
    let labels: Vec<&str> = registry.split('.').collect();
    match labels.as_slice() {
        [account, "dkr", ecr, region, "amazonaws", "com"]
        | [account, "dkr", ecr, region, "amazonaws", "com", "cn"] => {
            is_account(account) && matches!(*ecr, "ecr" | "ecr-fips") && is_region(region)
        }
        [account, service, region, "on", "aws"] => {
            is_account(account)
                && matches!(*service, "dkr-ecr" | "dkr-ecr-fips")
                && is_region(region)
        }
        _ => false,
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS region name: lowercase words joined by `-`, ending in a number (`us-east-1`,
/// `cn-north-1`, `us-gov-west-1`, `eu-isoe-west-1`).
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 2
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// A URL's origin: scheme, host and port (the scheme's default when none is written),
/// lowercased. Credentials go only to the origin they were given for.
#[must_use]
pub fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: hyper::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some((scheme, host, port))
}

/// Why `url` may not be used to talk to a registry, if it may not: only `https://`, or
/// `http://` to a loopback IP address.
#[must_use]
pub fn insecure_url_problem(url: &str) -> Option<String> {
    match origin(url) {
        Some((scheme, _, _)) if scheme == "https" => None,
        Some((scheme, host, _)) if scheme == "http" && crate::text::is_loopback_ip(&host) => None,
        Some((scheme, host, _)) if scheme == "http" => Some(format!(
            "`{url}` is plain HTTP to {host}, which is not a loopback IP address; use https://"
        )),
        _ => Some(format!("`{url}` is not an http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_docker() {
        let r = ImageRef::parse("alpine").expect("ok");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("docker.io", "library/alpine", "latest")
        );
        let r = ImageRef::parse("grycap/imagemagick:1.2").expect("ok");
        assert_eq!(r.repository, "grycap/imagemagick");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        let r = ImageRef::parse("127.0.0.1:5000/base/tiny:v1").expect("ok");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "base/tiny");
        assert_eq!(r.to_string(), "127.0.0.1:5000/base/tiny:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/o/r@{d}")).expect("ok");
        assert_eq!(r.reference(), d);
        assert!(ImageRef::parse("Upper/Case").is_err());
        assert!(ImageRef::parse("x@sha256:zz").is_err());
        assert!(ImageRef::parse("").is_err());
    }

    #[test]
    fn endpoints_default_to_https_except_on_loopback() {
        let e = Endpoints::parse("docker.io=http://127.0.0.1:9/").expect("ok");
        assert_eq!(e.url("docker.io"), "http://127.0.0.1:9");
        assert_eq!(Endpoints::default().url("docker.io"), DOCKER_HUB_API);
        assert_eq!(e.url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(e.url("[::1]:5000"), "http://[::1]:5000");
        assert_eq!(e.url("ghcr.io"), "https://ghcr.io");
        assert!(Endpoints::parse("docker.io").is_err());
        assert!(Endpoints::parse("docker.io=ftp://x").is_err());
    }

    #[test]
    fn plain_http_only_to_a_parsed_loopback_address_never_by_name() {
        let e = Endpoints::default();
        assert_eq!(e.url("localhost:5000"), "https://localhost:5000");
        assert_eq!(
            e.url("127.0.0.1.nip.io:5000"),
            "https://127.0.0.1.nip.io:5000"
        );
        assert_eq!(e.url("127.evil.example"), "https://127.evil.example");
        assert_eq!(e.url("x.localhost:80"), "https://x.localhost:80");
        assert!(Endpoints::parse("docker.io=http://mirror.example").is_err());
        assert!(Endpoints::parse("docker.io=http://localhost:5000").is_err());
        assert!(Endpoints::parse("docker.io=https://mirror.example").is_ok());
        assert!(Endpoints::parse("docker.io=http://[::1]:5000").is_ok());
        assert_eq!(
            origin("https://Reg.example/v2/"),
            Some(("https".into(), "reg.example".into(), 443))
        );
        assert_ne!(
            origin("https://reg.example/"),
            origin("https://reg.example:444/")
        );
        assert_ne!(
            origin("https://reg.example/"),
            origin("http://reg.example:443/")
        );
    }

    #[test]
    fn ecr_token_to_a_look_alike_host() {
        for real in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "123456789012.dkr-ecr.eu-west-1.on.aws",
        ] {
            assert!(is_ecr(real), "{real}");
        }
        for fake in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.attacker.example",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "x.123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecrx.us-east-1.amazonaws.com",
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.attacker.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn.evil",
            "123456789012.dkr.ecr.us-east-1.on.aws",
            "ghcr.io",
        ] {
            assert!(!is_ecr(fake), "{fake}");
        }
    }
}
