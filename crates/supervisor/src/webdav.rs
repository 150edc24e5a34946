//! Uploads to a WebDAV server (dCache and the like): the missing folders made with `MKCOL`,
//! then the file streamed with one `PUT`, both with basic authentication. Redirects are never
//! followed, so the password goes only to the server the configuration names.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use http::{Method, Request, StatusCode, header};

use crate::net::Hyper;
use crate::secrets::Secret;

/// A WebDAV server.
#[derive(Debug)]
pub struct WebDav {
    client: Hyper,
    /// `scheme://authority` and the base path without a trailing `/`.
    origin: String,
    base: String,
    authorization: Secret,
    /// Folders known to exist.
    made: Mutex<HashSet<String>>,
}

/// Encodes one path segment: everything but unreserved characters and a few safe ones.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error and every cause under it: hyper says only "client error (Connect)" on its own.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl WebDav {
    /// The server at `url` (`https://host[:port][/path]`), as `login` with `password`.
    ///
    /// # Errors
    /// When `url` is not an absolute http(s) URL.
    pub fn new(client: Hyper, url: &str, login: &str, password: &Secret) -> Result<WebDav, String> {
        use base64::Engine as _;
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!("`{url}` is not an absolute URL"));
        };
        if scheme != "https" && scheme != "http" {
            return Err(format!("`{url}`: WebDAV is spoken over https"));
        }
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{login}:{}", password.expose()));
        Ok(WebDav {
            client,
            origin: format!("{scheme}://{authority}"),
            base: uri.path().trim_end_matches('/').to_owned(),
            authorization: Secret::from(format!("Basic {token}")),
            made: Mutex::new(HashSet::new()),
        })
    }

    /// True when `url`, its dot segments removed as a server would (RFC 3986, 5.2.4), is
    /// below the configured folder.
    fn holds(&self, url: &str) -> bool {
        let Some(path) = url.strip_prefix(&self.origin) else {
            return false;
        };
        let mut out: Vec<&str> = Vec::new();
        for s in path.split('/') {
            match s {
                "." => {}
                ".." => {
                    out.pop();
                }
                s => out.push(s),
            }
        }
        let resolved = out.join("/");
        resolved.starts_with(&format!("{}/", self.base)) && resolved.len() > self.base.len() + 1
    }

    fn url(&self, path: &[&str]) -> String {
        let mut u = format!("{}{}", self.origin, self.base);
        for s in path {
            u.push('/');
            u.push_str(&encode(s));
        }
        u
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: SdkBody,
        length: Option<u64>,
    ) -> Result<StatusCode, String> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url)
            .header(header::AUTHORIZATION, self.authorization.expose());
        if let Some(n) = length {
            req = req.header(header::CONTENT_LENGTH, n);
        }
        let req = req.body(body).map_err(|e| format!("{method} {url}: {e}"))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| format!("{method} {url}: {}", causes(&e)))?;
        Ok(resp.status())
    }

    /// Makes every folder of `dirs` (a path's segments) that is not known to exist.
    async fn make_folders(&self, dirs: &[&str]) -> Result<(), String> {
        for depth in 1..=dirs.len() {
            let url = self.url(&dirs[..depth]);
            if self
                .made
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&url)
            {
                continue;
            }
            let status = self
                .send(
                    Method::from_bytes(b"MKCOL").map_err(|e| e.to_string())?,
                    &url,
                    SdkBody::empty(),
                    Some(0),
                )
                .await?;
            // 201: made; 405: already there (RFC 4918 9.3.1).
            if !(status == StatusCode::CREATED || status == StatusCode::METHOD_NOT_ALLOWED) {
                return Err(format!("MKCOL {url}: HTTP {status}"));
            }
            self.made
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(url);
        }
        Ok(())
    }

    /// Uploads the file at `file` to `path` (segments separated by `/`), making its folders.
    /// Returns the URL written.
    ///
    /// # Errors
    /// When the file cannot be read or the server refuses.
    pub async fn put(&self, path: &str, file: &Path) -> Result<String, String> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let Some((_, dirs)) = segments.split_last() else {
            return Err(format!("`{path}` names no file"));
        };
        // Never a folder above the configured one: no dot segment (nor one a server that
        // takes `\` for `/` would see), and the URL checked once made.
        if segments
            .iter()
            .flat_map(|s| s.split('\\'))
            .any(|s| s == "." || s == "..")
        {
            return Err(format!("`{path}` has a `.` or `..` segment"));
        }
        let url = self.url(&segments);
        if !self.holds(&url) {
            return Err(format!(
                "`{path}` leads outside {}{}",
                self.origin, self.base
            ));
        }
        self.make_folders(dirs).await?;
        let length = tokio::fs::metadata(file)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?
            .len();
        let body = ByteStream::from_path(file)
            .await
            .map_err(|e| format!("{}: {e}", file.display()))?
            .into_inner();
        let status = self.send(Method::PUT, &url, body, Some(length)).await?;
        if status.is_success() {
            Ok(url)
        } else {
            Err(format!("PUT {url}: HTTP {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        let d = WebDav::new(
            crate::net::client(true, None),
            "https://dav.example.org:2880/data/",
            "u",
            &Secret::from("p".to_owned()),
        )
        .expect("valid");
        assert_eq!(
            d.url(&["out", "a b#1.txt"]),
            "https://dav.example.org:2880/data/out/a%20b%231.txt"
        );
        assert_eq!(
            d.url(&["out", "a\\b.txt"]),
            "https://dav.example.org:2880/data/out/a%5Cb.txt"
        );
        assert!(d.holds(&d.url(&["out", "x"])));
        assert!(!d.holds("https://dav.example.org:2880/data/../x"));
        assert!(!d.holds("https://dav.example.org:2880/database/x"));
        assert!(!d.holds("https://elsewhere.example.org/data/x"));
        assert!(
            WebDav::new(
                crate::net::client(true, None),
                "ftp://x/",
                "u",
                &Secret::from(String::new())
            )
            .is_err()
        );
    }
}
