//! A function's image assembled here instead of pushed: the base's layers (downloaded once
//! into a blob cache, each checked against its digest), the supervisor layer and the function
//! layer, unpacked into a cached root file system named after the digests of all of them. The
//! same inputs give the same layers, so a second run reuses the folder and downloads nothing.

use std::fs;
use std::path::{Path, PathBuf};

use super::build::{BuildError, Spec, is_sha256, parts};
use super::registry::Registry;
use super::rootfs::{self, Unpacked};

/// An image ready to run here.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// Its root file system.
    pub root: PathBuf,
    /// What unpacking it did; `None` when the cache had it.
    pub unpacked: Option<Unpacked>,
    /// The base image's environment (`KEY=value`), which the image's process starts with.
    pub env: Vec<String>,
    /// The image's working directory (`/` when the base names none).
    pub working_dir: String,
    /// The digest the base reference resolved to.
    pub base_digest: String,
}

/// Assembles `spec` (its `target` is not used: nothing is pushed) into a root file system in
/// `cache` (`rootfs/` and `blobs/` below it). `progress` hears one line per step that takes
/// time.
///
/// # Errors
/// When the base cannot be read, a layer cannot be downloaded or unpacked safely.
pub async fn assemble(
    reg: &Registry,
    spec: &Spec,
    cache: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Assembled, BuildError> {
    let parts = parts(reg, spec, progress).await?;
    let base = parts.base_layers();
    let mut digests: Vec<&str> = base.iter().map(|(d, _)| d.as_str()).collect();
    digests.push(&parts.supervisor.digest);
    digests.push(&parts.own.digest);
    let key = rootfs::cache_key(&digests);
    let roots = cache.join("rootfs");
    let done = roots.join(&key);
    let unpacked = if done.is_dir() {
        None
    } else {
        let blobs = cache.join("blobs").join("sha256");
        let mut files = Vec::new();
        for (i, (digest, size)) in base.iter().enumerate() {
            files.push(fetch(reg, spec, &blobs, digest, *size, (i, base.len()), progress).await?);
        }
        progress("unpacking the root file system");
        let (supervisor, own) = (parts.supervisor.clone(), parts.own.blob.clone());
        let roots2 = roots.clone();
        let key2 = key.clone();
        let (_, stats) = tokio::task::spawn_blocking(move || {
            rootfs::cached(&roots2, &key2, |root| {
                let mut stats = Unpacked::default();
                for (i, f) in files.iter().enumerate() {
                    let file = fs::File::open(f)
                        .map_err(|source| rootfs::RootfsError::Io { layer: i, source })?;
                    rootfs::apply_layer(root, i, file, &mut stats)?;
                }
                rootfs::apply_layer(root, files.len(), &supervisor.blob[..], &mut stats)?;
                rootfs::apply_layer(root, files.len() + 1, &own[..], &mut stats)?;
                Ok(stats)
            })
        })
        .await
        .map_err(|e| BuildError::Other(format!("unpacking: {e}")))?
        .map_err(|e| BuildError::Other(format!("unpacking {}: {e}", spec.base)))?;
        stats
    };
    Ok(Assembled {
        root: done,
        unpacked,
        env: parts.process.env,
        working_dir: parts
            .process
            .command
            .working_dir
            .unwrap_or_else(|| "/".to_owned()),
        base_digest: parts.base_digest,
    })
}

/// The blob `digest` of the base, from the cache or downloaded into it (under a temporary
/// name, checked against the digest, then renamed).
async fn fetch(
    reg: &Registry,
    spec: &Spec,
    blobs: &Path,
    digest: &str,
    size: u64,
    (i, of): (usize, usize),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, BuildError> {
    // The digest names a file.
    if !is_sha256(digest) {
        return Err(BuildError::Other(format!(
            "the base image lists a layer with the digest `{digest}`; scar reads sha256 digests"
        )));
    }
    let path = blobs.join(digest.trim_start_matches("sha256:"));
    if path.is_file() {
        return Ok(path);
    }
    let local = |e: std::io::Error| BuildError::Other(format!("caching {digest}: {e}"));
    fs::create_dir_all(blobs).map_err(local)?;
    progress(&format!(
        "downloading base layer {}/{of} {} ({} bytes)",
        i + 1,
        super::build::short(digest),
        size
    ));
    let mut tmp = tempfile::NamedTempFile::new_in(blobs).map_err(local)?;
    let got = reg.blob_into(&spec.base, digest, tmp.as_file_mut()).await?;
    if size != 0 && got != size {
        return Err(BuildError::Other(format!(
            "{digest}: the registry sent {got} bytes, the manifest says {size}"
        )));
    }
    tmp.persist(&path).map_err(|e| local(e.error))?;
    Ok(path)
}
