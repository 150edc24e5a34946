//! A client of the OCI distribution API (the registry API), enough to assemble an image without
//! a Docker daemon: resolve and read manifests, read, check, mount and upload blobs, put
//! manifests. It answers the registry's authentication challenges: bearer tokens (Docker Hub,
//! GHCR, ...) and basic credentials (ECR through `GetAuthorizationToken`, others from Docker's
//! `config.json`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::reference::{Endpoints, ImageRef, insecure_url_problem, is_ecr, origin};

type Body = BoxBody<Bytes, std::io::Error>;
type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Body,
>;

/// Media types a manifest request accepts: single-platform manifests and indexes, OCI and
/// Docker.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Bytes sent per `PATCH` of a chunked blob upload (ECR takes 5 to 10 MiB per part).
const CHUNK: usize = 8 * 1024 * 1024;

/// The most bytes read for a manifest or an index (the limit containerd and the
/// distribution registry apply).
pub const MANIFEST_MAX: usize = 4 * 1024 * 1024;
/// The most bytes read into memory for a blob (an image configuration).
pub const CONFIG_MAX: usize = 8 * 1024 * 1024;
/// The most bytes read of a token server's answer.
pub const TOKEN_MAX: usize = 1024 * 1024;
/// The most bytes read of an error answer (only its first message is shown).
const ERROR_MAX: usize = 64 * 1024;

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error status.
    #[error("{what}: the registry answered {status}{detail}")]
    Status {
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error message, if any (`: ...`).
        detail: String,
    },
    /// The registry could not be reached.
    #[error("{what}: {message}")]
    Transport {
        /// What was asked.
        what: String,
        /// Why.
        message: String,
    },
    /// An answer that is not what the API promises.
    #[error("{0}")]
    Invalid(String),
}

impl RegistryError {
    /// True when the registry said the thing asked for does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Status { status: 404, .. })
    }
}

/// A manifest as the registry serves it.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Its bytes, exactly (the digest is over these).
    pub bytes: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// `sha256:` of the bytes.
    pub digest: String,
}

impl Manifest {
    /// The parsed JSON.
    ///
    /// # Errors
    /// When the bytes are not JSON.
    pub fn json(&self) -> Result<Value, RegistryError> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| RegistryError::Invalid(format!("a manifest is not JSON: {e}")))
    }

    /// True for an index (manifest list) of several platforms.
    #[must_use]
    pub fn is_index(&self) -> bool {
        self.media_type.contains("index") || self.media_type.contains("manifest.list")
    }
}

/// The registry client.
pub struct Registry {
    client: Client,
    endpoints: Endpoints,
    ecr: Option<aws_sdk_ecr::Client>,
    /// `Authorization` values by `host repository`.
    auth: Mutex<HashMap<String, String>>,
    /// Blobs known to be in a repository (`registry/repository@digest`): checked once.
    present: Mutex<std::collections::HashSet<String>>,
    /// One sender per blob and repository: builds running at once never upload the same blob
    /// twice (and never race each other's uploads).
    sending: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    /// Manifests and configs read, by `registry/repository@reference`: a run reads each once.
    read_cache: Mutex<HashMap<String, (Vec<u8>, String)>>,
}

impl Registry {
    /// A client. `ecr` answers basic-auth challenges of ECR registries.
    ///
    /// # Errors
    /// When the system's TLS roots cannot be loaded.
    pub fn new(
        endpoints: Endpoints,
        ecr: Option<aws_sdk_ecr::Client>,
    ) -> Result<Registry, RegistryError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| RegistryError::Invalid(format!("loading the system's TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Registry {
            client,
            endpoints,
            ecr,
            auth: Mutex::new(HashMap::new()),
            present: Mutex::new(std::collections::HashSet::new()),
            sending: Mutex::new(HashMap::new()),
            read_cache: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, image: &ImageRef, tail: &str) -> String {
        format!(
            "{}/v2/{}/{tail}",
            self.endpoints.url(&image.registry),
            image.repository
        )
    }

    /// The digest `image` points at now (`HEAD`, which Docker Hub does not count against its
    /// pull limit). A pinned reference answers without a call.
    ///
    /// # Errors
    /// When the registry cannot be reached or has no such image.
    pub async fn resolve(&self, image: &ImageRef) -> Result<String, RegistryError> {
        if let Some(d) = &image.digest {
            return Ok(d.clone());
        }
        let what = format!("resolving {image}");
        let resp = self
            .manifest_request(image, Method::HEAD, image.reference(), &what)
            .await?;
        if let Some(d) = header(&resp, "docker-content-digest") {
            return Ok(d);
        }
        Ok(self.manifest(image, image.reference()).await?.digest)
    }

    /// The manifest `reference` (a tag or digest) of `image`'s repository.
    ///
    /// # Errors
    /// When it cannot be read, or its digest does not match a pinned reference.
    pub async fn manifest(
        &self,
        image: &ImageRef,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        let what = format!("reading the manifest {}@{reference}", image.name());
        let key = format!("{}@{reference}", image.name());
        let cached = self
            .read_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned());
        let (bytes, media_type) = match cached {
            Some(hit) => hit,
            None => {
                let resp = self
                    .manifest_request(image, Method::GET, reference, &what)
                    .await?;
                let media_type = header(&resp, "content-type").unwrap_or_default();
                let bytes = collect(resp, &what, MANIFEST_MAX).await?;
                if let Ok(mut c) = self.read_cache.lock() {
                    c.insert(key, (bytes.clone(), media_type.clone()));
                }
                (bytes, media_type)
            }
        };
        let digest = super::digest(&bytes);
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RegistryError::Invalid(format!(
                "{what}: the registry sent content whose digest is {digest}"
            )));
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default()
        } else {
            media_type
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// A blob, in memory (for configs), checked against its digest.
    ///
    /// # Errors
    /// When it cannot be read or its content does not match.
    pub async fn blob(&self, image: &ImageRef, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let key = format!("{}@{digest}", image.name());
        if let Some((bytes, _)) = self
            .read_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(bytes);
        }
        let mut out = Capped {
            bytes: Vec::new(),
            max: CONFIG_MAX,
        };
        self.blob_into(image, digest, &mut out).await?;
        let out = out.bytes;
        if let Ok(mut c) = self.read_cache.lock() {
            c.insert(key, (out.clone(), String::new()));
        }
        Ok(out)
    }

    /// Makes sure `image`'s repository has the blob `digest`: when it is not known to be there
    /// and a `HEAD` does not find it, `send` puts it there. One sender per blob at a time;
    /// answers whether `send` ran.
    ///
    /// # Errors
    /// When the registry cannot be asked, or `send` fails.
    pub async fn ensure_blob<F, Fut>(
        &self,
        image: &ImageRef,
        digest: &str,
        send: F,
    ) -> Result<bool, RegistryError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), RegistryError>>,
    {
        let key = format!("{}@{digest}", image.name());
        let known = |k: &str| self.present.lock().is_ok_and(|p| p.contains(k));
        if known(&key) {
            return Ok(false);
        }
        let lock = match self.sending.lock() {
            Ok(mut m) => m.entry(key.clone()).or_default().clone(),
            Err(_) => std::sync::Arc::new(tokio::sync::Mutex::new(())),
        };
        let _sending = lock.lock().await;
        if known(&key) {
            return Ok(false);
        }
        let sent = if self.has_blob(image, digest).await? {
            false
        } else {
            send().await?;
            true
        };
        if let Ok(mut p) = self.present.lock() {
            p.insert(key);
        }
        Ok(sent)
    }

    /// A blob written to `sink` as it arrives, checked against its digest. Follows the
    /// redirects registries answer blob reads with (to a storage URL, without credentials).
    ///
    /// # Errors
    /// When it cannot be read or written, or its content does not match.
    pub async fn blob_into(
        &self,
        image: &ImageRef,
        digest: &str,
        sink: &mut (dyn Write + Send),
    ) -> Result<u64, RegistryError> {
        let what = format!("reading the blob {}@{digest}", image.name());
        let url = self.url(image, &format!("blobs/{digest}"));
        let mut resp = self
            .send(image, Method::GET, &url, &[], None, &what)
            .await?;
        let mut from = url;
        for _ in 0..5 {
            if !resp.status().is_redirection() {
                break;
            }
            let Some(location) = header(&resp, "location") else {
                break;
            };
            let location = self.absolute(image, &location);
            check_hop(&from, &location, &what)?;
            from.clone_from(&location);
            let req = Request::get(location.as_str())
                .body(empty())
                .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
            resp = self
                .client
                .request(req)
                .await
                .map_err(|e| transport(&what, &e))?;
            if !resp.status().is_success() && !resp.status().is_redirection() {
                return Err(status_error(resp, &what).await);
            }
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| transport(&what, &e))?;
            if let Ok(data) = frame.into_data() {
                hasher.update(&data);
                size += data.len() as u64;
                sink.write_all(&data)
                    .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
            }
        }
        let got = format!("sha256:{}", hex(&hasher.finalize()));
        if got != digest {
            return Err(RegistryError::Invalid(format!(
                "{what}: the content's digest is {got}"
            )));
        }
        Ok(size)
    }

    /// True when `image`'s repository has the blob.
    ///
    /// # Errors
    /// When the registry cannot be asked.
    pub async fn has_blob(&self, image: &ImageRef, digest: &str) -> Result<bool, RegistryError> {
        let what = format!("checking {}/blobs/{digest}", image.name());
        let url = self.url(image, &format!("blobs/{digest}"));
        match self.send(image, Method::HEAD, &url, &[], None, &what).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// True when `image`'s repository has the manifest `reference`; with a tag, true only when
    /// the tag points at `digest`.
    ///
    /// # Errors
    /// When the registry cannot be asked.
    pub async fn has_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let what = format!("checking {}:{reference}", image.name());
        match self
            .manifest_request(image, Method::HEAD, reference, &what)
            .await
        {
            Ok(resp) => Ok(header(&resp, "docker-content-digest").is_none_or(|d| d == digest)),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Mounts the blob from `from` (another repository of the same registry); false when the
    /// registry would rather have it uploaded.
    ///
    /// # Errors
    /// When the registry cannot be asked.
    pub async fn mount(
        &self,
        image: &ImageRef,
        digest: &str,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let what = format!("mounting {digest} into {}", image.name());
        let resp = self
            .open_upload(image, &format!("?mount={digest}&from={from}"), &what)
            .await?;
        let mounted = resp.status() == StatusCode::CREATED;
        if !mounted && let Some(loc) = header(&resp, "location") {
            // An upload was opened instead: cancel it, the caller uploads afresh.
            let url = self.absolute(image, &loc);
            let _ = self
                .send(image, Method::DELETE, &url, &[], None, &what)
                .await;
        }
        Ok(mounted)
    }

    /// Uploads a blob read from `source` (`size` bytes, whose digest is `digest`): one `PUT`
    /// when small, else `PATCH` chunks then the closing `PUT`.
    ///
    /// # Errors
    /// When the upload fails.
    pub async fn upload(
        &self,
        image: &ImageRef,
        digest: &str,
        size: u64,
        source: &mut (dyn Read + Send),
    ) -> Result<(), RegistryError> {
        let what = format!("uploading {digest} to {}", image.name());
        let resp = self.open_upload(image, "", &what).await?;
        let mut location = header(&resp, "location")
            .ok_or_else(|| RegistryError::Invalid(format!("{what}: no upload location")))?;
        let read_chunk = |source: &mut (dyn Read + Send)| -> Result<Vec<u8>, RegistryError> {
            let mut buf = Vec::with_capacity(CHUNK);
            source
                .take(CHUNK as u64)
                .read_to_end(&mut buf)
                .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
            Ok(buf)
        };
        let mut sent = 0u64;
        let last = if size as usize <= CHUNK {
            read_chunk(source)?
        } else {
            loop {
                let chunk = read_chunk(source)?;
                if chunk.is_empty() {
                    break Vec::new();
                }
                let range = format!("{sent}-{}", sent + chunk.len() as u64 - 1);
                let len = chunk.len().to_string();
                let url = self.absolute(image, &location);
                let resp = self
                    .send(
                        image,
                        Method::PATCH,
                        &url,
                        &[
                            ("content-type", "application/octet-stream"),
                            ("content-range", &range),
                            ("content-length", &len),
                        ],
                        Some(&|| chunk.clone()),
                        &what,
                    )
                    .await?;
                sent += chunk.len() as u64;
                if let Some(l) = header(&resp, "location") {
                    location = l;
                }
            }
        };
        let url = self.absolute(image, &location);
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}digest={digest}");
        let len = last.len().to_string();
        self.send(
            image,
            Method::PUT,
            &url,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &len),
            ],
            Some(&|| last.clone()),
            &what,
        )
        .await?;
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag or its digest); answers its digest.
    ///
    /// # Errors
    /// When the registry refuses it.
    pub async fn put_manifest(
        &self,
        image: &ImageRef,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let what = format!("putting the manifest {}:{reference}", image.name());
        let url = self.url(image, &format!("manifests/{reference}"));
        let len = bytes.len().to_string();
        self.send(
            image,
            Method::PUT,
            &url,
            &[("content-type", media_type), ("content-length", &len)],
            Some(&|| bytes.to_vec()),
            &what,
        )
        .await?;
        Ok(super::digest(bytes))
    }

    /// Opens a blob upload (`POST .../blobs/uploads/` with `query`, such as a mount).
    async fn open_upload(
        &self,
        image: &ImageRef,
        query: &str,
        what: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        let url = self.url(image, &format!("blobs/uploads/{query}"));
        self.send(
            image,
            Method::POST,
            &url,
            &[("content-length", "0")],
            Some(&Vec::new),
            what,
        )
        .await
    }

    /// A `GET` or `HEAD` of a manifest, accepting every kind scar reads.
    async fn manifest_request(
        &self,
        image: &ImageRef,
        method: Method,
        reference: &str,
        what: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        let url = self.url(image, &format!("manifests/{reference}"));
        self.send(
            image,
            method,
            &url,
            &[("accept", MANIFEST_ACCEPT)],
            None,
            what,
        )
        .await
    }

    fn absolute(&self, image: &ImageRef, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.endpoints.url(&image.registry))
        }
    }

    /// Sends a request, answering one authentication challenge. `body` makes the body afresh
    /// for the retry. Any non-2xx/3xx status is an error.
    async fn send(
        &self,
        image: &ImageRef,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&(dyn Fn() -> Vec<u8> + Sync)>,
        what: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        let key = format!("{} {}", image.registry, image.repository);
        // Credentials go only to the registry's own scheme, host and port: an upload
        // `Location` elsewhere is followed without them, and never over plain HTTP from HTTPS.
        let base = self.endpoints.url(&image.registry);
        let own = origin(url).is_some() && origin(url) == origin(&base);
        if !own {
            check_hop(&base, url, what)?;
        }
        let mut retries = 0u32;
        let mut challenged = false;
        for _ in 0..6 {
            let mut req = Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let cached = self.auth.lock().ok().and_then(|a| a.get(&key).cloned());
            if let Some(a) = cached.as_ref().filter(|_| own) {
                req = req.header("authorization", a.as_str());
            }
            let req = req
                .body(match body {
                    Some(b) => Full::new(Bytes::from(b()))
                        .map_err(|never| match never {})
                        .boxed(),
                    None => empty(),
                })
                .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| transport(what, &e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !challenged && own {
                challenged = true;
                let challenge = header(&resp, "www-authenticate").unwrap_or_default();
                let value = self.answer(image, &challenge, what).await?;
                if let Ok(mut a) = self.auth.lock() {
                    a.insert(key.clone(), value);
                }
                continue;
            }
            if status.is_success() || status.is_redirection() {
                return Ok(resp);
            }
            if status.is_server_error()
                && (method == Method::GET || method == Method::HEAD)
                && retries < 3
            {
                // A registry's passing trouble; reads are safe to ask again.
                retries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200 << retries)).await;
                continue;
            }
            return Err(status_error(resp, what).await);
        }
        Err(RegistryError::Status {
            what: what.to_owned(),
            status: 401,
            detail: ": the credentials were refused".into(),
        })
    }

    /// The `Authorization` value that answers `challenge`.
    async fn answer(
        &self,
        image: &ImageRef,
        challenge: &str,
        what: &str,
    ) -> Result<String, RegistryError> {
        let basic = self.credentials(&image.registry).await?;
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(b) = basic else {
                return Err(RegistryError::Status {
                    what: what.to_owned(),
                    status: 401,
                    detail: format!(
                        ": {} asks for credentials; log in with `docker login {}`",
                        image.registry, image.registry
                    ),
                });
            };
            return Ok(format!("Basic {b}"));
        }
        let params = challenge_params(params);
        let realm = params.get("realm").ok_or_else(|| {
            RegistryError::Invalid(format!("{what}: a challenge without a realm: {challenge}"))
        })?;
        if let Some(problem) = insecure_url_problem(realm) {
            return Err(RegistryError::Invalid(format!(
                "{what}: {} sends its token server as {problem}; no credentials were sent",
                image.registry
            )));
        }
        let mut url = format!("{realm}?");
        if let Some(s) = params.get("service") {
            url.push_str(&format!("service={}&", crate::text::percent_encode(s)));
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull,push", image.repository));
        url.push_str(&format!("scope={}", crate::text::percent_encode(&scope)));
        let mut req = Request::get(url.as_str());
        if let Some(b) = &basic {
            req = req.header("authorization", format!("Basic {b}"));
        }
        let req = req
            .body(empty())
            .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|e| transport(what, &e))?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &format!("{what}: asking {realm} for a token")).await);
        }
        let bytes = collect(resp, what, TOKEN_MAX).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Invalid(format!("{what}: a token answer: {e}")))?;
        let token = v
            .get("token")
            .or_else(|| v.get("access_token"))
            .and_then(Value::as_str)
            .ok_or_else(|| RegistryError::Invalid(format!("{what}: no token in the answer")))?;
        Ok(format!("Bearer {token}"))
    }

    /// Basic credentials (`base64(user:password)`) for `registry`: from ECR when it is one
    /// (and is not served elsewhere), else from Docker's or Podman's auth file.
    async fn credentials(&self, registry: &str) -> Result<Option<String>, RegistryError> {
        if is_ecr(registry)
            && !self.endpoints.is_overridden(registry)
            && let Some(ecr) = &self.ecr
        {
            let out = ecr.get_authorization_token().send().await.map_err(|e| {
                RegistryError::Transport {
                    what: "ecr:GetAuthorizationToken".into(),
                    message: aws_sdk_ecr::error::DisplayErrorContext(&e).to_string(),
                }
            })?;
            return Ok(out
                .authorization_data()
                .first()
                .and_then(|d| d.authorization_token())
                .map(str::to_owned));
        }
        Ok(auth_file_credentials(registry))
    }
}

fn auth_file_credentials(registry: &str) -> Option<String> {
    let mut files = Vec::new();
    if let Ok(p) = std::env::var("REGISTRY_AUTH_FILE") {
        files.push(std::path::PathBuf::from(p));
    }
    if let Ok(d) = std::env::var("DOCKER_CONFIG") {
        files.push(Path::new(&d).join("config.json"));
    }
    if let Ok(h) = std::env::var("HOME") {
        files.push(Path::new(&h).join(".docker/config.json"));
    }
    if let Ok(r) = std::env::var("XDG_RUNTIME_DIR") {
        files.push(Path::new(&r).join("containers/auth.json"));
    }
    let keys: Vec<String> = if registry == super::reference::DOCKER_HUB {
        vec![
            "https://index.docker.io/v1/".into(),
            "docker.io".into(),
            "index.docker.io".into(),
        ]
    } else {
        vec![registry.to_owned(), format!("https://{registry}")]
    };
    files.iter().find_map(|f| {
        let v: Value = serde_json::from_slice(&std::fs::read(f).ok()?).ok()?;
        keys.iter().find_map(|k| {
            v.pointer(&format!(
                "/auths/{}",
                k.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(|a| a.get("auth"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        })
    })
}

fn challenge_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((k, v)) = rest.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let v = v.trim_start();
        let (value, tail) = if let Some(q) = v.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match v.find(',') {
                Some(end) => (&v[..end], &v[end..]),
                None => (v, ""),
            }
        };
        out.insert(k, value.to_owned());
        rest = tail.trim_start_matches(',').trim();
    }
    out
}

fn empty() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn header(resp: &hyper::Response<hyper::body::Incoming>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn transport(what: &str, e: &dyn std::fmt::Display) -> RegistryError {
    RegistryError::Transport {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

/// The body of `resp`, refused once it passes `max` bytes (a registry's answer is not trusted
/// to be small).
async fn collect(
    resp: hyper::Response<hyper::body::Incoming>,
    what: &str,
    max: usize,
) -> Result<Vec<u8>, RegistryError> {
    let too_big =
        || RegistryError::Invalid(format!("{what}: the answer is larger than {max} bytes"));
    let announced = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
    if announced.is_some_and(|l| l > max as u64) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| transport(what, &e))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(too_big());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Why following `from` to `to` is refused, if it is: plain HTTP outside loopback, or a step
/// down from HTTPS to HTTP.
fn check_hop(from: &str, to: &str, what: &str) -> Result<(), RegistryError> {
    if let Some(problem) = insecure_url_problem(to) {
        return Err(RegistryError::Invalid(format!(
            "{what}: the registry sent scar to {problem}"
        )));
    }
    let scheme = |u: &str| origin(u).map(|o| o.0);
    if scheme(from).as_deref() == Some("https") && scheme(to).as_deref() != Some("https") {
        return Err(RegistryError::Invalid(format!(
            "{what}: the registry sent scar from HTTPS to `{to}`; refused"
        )));
    }
    Ok(())
}

/// A sink that refuses to grow past `max` bytes.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            return Err(std::io::Error::other(format!(
                "larger than {} bytes",
                self.max
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn status_error(resp: hyper::Response<hyper::body::Incoming>, what: &str) -> RegistryError {
    let status = resp.status().as_u16();
    let body = collect(resp, what, ERROR_MAX).await.unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/errors/0/message")
                .and_then(Value::as_str)
                .map(|m| format!(": {m}"))
        })
        .unwrap_or_default();
    RegistryError::Status {
        what: what.to_owned(),
        status,
        detail,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `base64(user:password)`, the form basic credentials travel in.
#[must_use]
pub fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quotes_and_commas() {
        let p = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/alpine:pull");
        let p = challenge_params("realm=x, service=y");
        assert_eq!((p["realm"].as_str(), p["service"].as_str()), ("x", "y"));
    }
}
