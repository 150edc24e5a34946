//! A function's image assembled here instead of pushed: the base's layers (downloaded once
//! into a blob cache, each checked against its digest), the supervisor layer and the function
//! layer, unpacked into a cached root file system named after the digests of all of them. The
//! same inputs give the same layers, so a second run reuses the folder and downloads nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Layer;
use super::build::{Base, BuildError, Spec, base_of, is_sha256, own_layer};
use super::reference::ImageRef;
use super::registry::Registry;
use super::rootfs::{self, Unpacked};

/// An image ready to run here.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// Its root file system.
    pub root: PathBuf,
    /// What unpacking it did; `None` when the cache had it.
    pub unpacked: Option<Unpacked>,
    /// The image's process: its entrypoint and command (the supervisor, in an image scar
    /// assembles).
    pub argv: Vec<String>,
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
    let base = base_of(reg, &spec.base, &spec.architecture).await?;
    let own = Arc::new(own_layer(spec, &base)?);
    // The supervisor layer is tens of megabytes to read, hash and check: it is made only when
    // the root file system is not cached. The cache knows the binary by its file's identity.
    let supervisor = Supervisor {
        identity: file_identity(&spec.supervisor)
            .map_err(|e| BuildError::Other(format!("{}: {e}", spec.supervisor.display())))?,
        path: spec.supervisor.clone(),
        progress,
    };
    let argv = vec![format!("/{}", super::SUPERVISOR_PATH)];
    unpacked(
        reg,
        &spec.base,
        base,
        Some(supervisor),
        vec![own],
        argv,
        cache,
        progress,
    )
    .await
}

/// The supervisor layer of an assembly, made only when needed.
struct Supervisor<'a> {
    /// Stands for the binary in the cache key.
    identity: String,
    path: PathBuf,
    progress: &'a (dyn Fn(&str) + Sync),
}

impl Supervisor<'_> {
    async fn layer(&self) -> Result<Arc<Layer>, BuildError> {
        (self.progress)("preparing the supervisor layer");
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || super::build::supervisor_layer(&path))
            .await
            .map_err(|e| BuildError::Other(format!("building the supervisor layer: {e}")))?
            .map_err(BuildError::Other)
    }
}

/// A file's identity for the local cache: its path, size, modification time and scar's
/// supervisor version (a rebuilt or replaced binary gets a new root file system).
fn file_identity(path: &Path) -> std::io::Result<String> {
    let path = fs::canonicalize(path)?;
    let meta = fs::metadata(&path)?;
    let modified = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Ok(format!(
        "local-file:{}:{}:{modified}:{}",
        path.display(),
        meta.len(),
        super::build::SUPERVISOR_VERSION
    ))
}

/// Unpacks the image `image` for `architecture` as it is (a prebuilt function's: scar adds
/// nothing), into the same cache as [`assemble`]. Its process is its own entrypoint and
/// command.
///
/// # Errors
/// As [`assemble`].
pub async fn prebuilt(
    reg: &Registry,
    image: &ImageRef,
    architecture: &str,
    cache: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Assembled, BuildError> {
    let base = base_of(reg, image, architecture).await?;
    let argv = base.process.command.argv(&[]);
    if argv.is_empty() {
        return Err(BuildError::Other(format!(
            "the image {image} names no entrypoint or command to run"
        )));
    }
    unpacked(reg, image, base, None, Vec::new(), argv, cache, progress).await
}

/// The root file system of `base`'s layers, then the supervisor's (when given), then `own`,
/// from the cache or unpacked into it.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one image, passed once by two callers"
)]
async fn unpacked(
    reg: &Registry,
    image: &ImageRef,
    base: Base,
    supervisor: Option<Supervisor<'_>>,
    own: Vec<Arc<Layer>>,
    argv: Vec<String>,
    cache: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Assembled, BuildError> {
    let layers = base.layers();
    let mut digests: Vec<&str> = layers.iter().map(|(d, _)| d.as_str()).collect();
    digests.extend(supervisor.iter().map(|s| s.identity.as_str()));
    digests.extend(own.iter().map(|l| l.digest.as_str()));
    let key = rootfs::cache_key(&digests);
    let roots = cache.join("rootfs");
    let done = roots.join(&key);
    let private = |e: std::io::Error| BuildError::Other(format!("the image cache: {e}"));
    // The cache folder itself too: one an earlier scar made 0755 is tightened.
    crate::cache::private_dir(cache).map_err(private)?;
    crate::cache::private_dir(&roots).map_err(private)?;
    let unpacked = if done.is_dir() {
        // Only this user can have made it (the cache is private): another's is refused.
        crate::cache::check_owned(&done).map_err(private)?;
        None
    } else {
        let blobs = cache.join("blobs").join("sha256");
        crate::cache::private_dir(&blobs).map_err(private)?;
        let mut files = Vec::new();
        for (i, (digest, size)) in layers.iter().enumerate() {
            let at = (i, layers.len());
            files.push(fetch(reg, image, &blobs, digest, *size, at, progress).await?);
        }
        let mut own = own;
        if let Some(s) = &supervisor {
            own.insert(0, s.layer().await?);
        }
        progress("unpacking the root file system");
        let (roots2, key2) = (roots.clone(), key.clone());
        let (_, stats) = tokio::task::spawn_blocking(move || {
            rootfs::cached(&roots2, &key2, |root| {
                let mut stats = Unpacked::default();
                for (i, f) in files.iter().enumerate() {
                    let file = fs::File::open(f)
                        .map_err(|source| rootfs::RootfsError::Io { layer: i, source })?;
                    rootfs::apply_layer(root, i, file, &mut stats)?;
                }
                for (i, layer) in own.iter().enumerate() {
                    rootfs::apply_layer(root, files.len() + i, &layer.blob[..], &mut stats)?;
                }
                Ok(stats)
            })
        })
        .await
        .map_err(|e| BuildError::Other(format!("unpacking: {e}")))?
        .map_err(|e| BuildError::Other(format!("unpacking {image}: {e}")))?;
        stats
    };
    Ok(Assembled {
        root: done,
        unpacked,
        argv,
        env: base.process.env,
        working_dir: base
            .process
            .command
            .working_dir
            .unwrap_or_else(|| "/".to_owned()),
        base_digest: base.digest,
    })
}

/// The blob `digest` of the base, from the cache or downloaded into it (under a temporary
/// name, checked against the digest, then renamed).
async fn fetch(
    reg: &Registry,
    image: &ImageRef,
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
    let local = |e: std::io::Error| BuildError::Other(format!("caching {digest}: {e}"));
    if path.is_file() {
        crate::cache::check_owned(&path).map_err(local)?;
        return Ok(path);
    }
    progress(&format!(
        "downloading base layer {}/{of} {} ({} bytes)",
        i + 1,
        super::build::short(digest),
        size
    ));
    let mut tmp = tempfile::NamedTempFile::new_in(blobs).map_err(local)?;
    let got = reg.blob_into(image, digest, tmp.as_file_mut()).await?;
    if size != 0 && got != size {
        return Err(BuildError::Other(format!(
            "{digest}: the registry sent {got} bytes, the manifest says {size}"
        )));
    }
    tmp.persist(&path).map_err(|e| local(e.error))?;
    Ok(path)
}
