//! Local root file systems: an image's layers applied in order into a folder, as the OCI image
//! spec says, so that `scar invoke --local` runs the image without a container runtime.
//!
//! What a layer holds is not trusted. Every path is taken apart and put back together inside
//! the root: an entry with a `..` component is refused; a symbolic link met on the way to an
//! entry (one a lower layer made, pointing at `/etc`, `../../..` or anywhere) is followed as
//! the container would follow it, with the root as `/` and `..` stopping there, so a layer
//! cannot write, link or delete outside the folder. Links are created as they are written (the
//! sandbox sees the root as `/`); device files and FIFOs are skipped (an unprivileged user
//! cannot make them, and a function has no use for them); owners are not kept (the sandbox
//! maps the caller to root); set-user-ID and set-group-ID bits are dropped.
//!
//! Whiteouts: `.wh.NAME` deletes `NAME` from the layers below, `.wh..wh..opq` empties its
//! folder of what the layers below put there; neither is created. Hard links point at a file
//! an earlier entry made, resolved inside the root like any other path.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How many symbolic links one path may pass through (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The most an image may unpack to: Lambda's limit for a container image.
pub const MAX_UNPACKED: u64 = 10 * 1024 * 1024 * 1024;

/// The most entries an image's layers may hold, all layers together: a small layer of empty
/// files or folders costs no bytes but an inode each, and could use up the file system's.
/// Large real images (a CUDA or TeX Live base) hold a few hundred thousand.
pub const MAX_ENTRIES: u64 = 1_000_000;

/// The whiteout prefix.
const WHITEOUT: &str = ".wh.";
/// The opaque-folder marker.
const OPAQUE: &str = ".wh..wh..opq";

/// A layer that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// An entry that would leave the root, or that cannot be what it says.
    #[error("layer {layer}: entry `{path}`: {why}")]
    Entry {
        /// The layer's index, from 0 (the base's first).
        layer: usize,
        /// The entry's path as the archive writes it.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Reading the archive or writing the folder failed.
    #[error("layer {layer}: {source}")]
    Io {
        /// The layer's index.
        layer: usize,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The layers hold more than [`MAX_UNPACKED`].
    #[error("the image unpacks to more than {limit} bytes, Lambda's limit for an image")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The layers hold more than [`MAX_ENTRIES`] entries.
    #[error("the image's layers hold more than {limit} entries; scar unpacks no more")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
}

/// What applying layers did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Folders made or kept.
    pub dirs: u64,
    /// Symbolic links made.
    pub symlinks: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Whiteouts and opaque markers applied.
    pub whiteouts: u64,
    /// Device files and FIFOs left out.
    pub skipped: u64,
    /// Every entry read, of any type (what [`MAX_ENTRIES`] caps).
    pub entries: u64,
}

/// Applies each layer (a tar stream, gzip-compressed or not) in order onto `root`, which must
/// exist.
///
/// # Errors
/// An entry that would leave the root, a hard link to nothing, a compression scar does not
/// read, more than [`MAX_UNPACKED`] bytes or [`MAX_ENTRIES`] entries, or an I/O error.
pub fn apply_layers<R: Read>(
    root: &Path,
    layers: impl IntoIterator<Item = R>,
) -> Result<Unpacked, RootfsError> {
    let mut stats = Unpacked::default();
    for (i, layer) in layers.into_iter().enumerate() {
        apply_layer(root, i, layer, &mut stats)?;
    }
    Ok(stats)
}

/// Applies one layer.
///
/// # Errors
/// As [`apply_layers`].
pub fn apply_layer<R: Read>(
    root: &Path,
    index: usize,
    layer: R,
    stats: &mut Unpacked,
) -> Result<(), RootfsError> {
    let io = |source| RootfsError::Io {
        layer: index,
        source,
    };
    let mut input = BufReader::with_capacity(256 * 1024, layer);
    let head = input.fill_buf().map_err(io)?;
    let stream: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(RootfsError::Entry {
            layer: index,
            path: String::new(),
            why: "the layer is zstd-compressed, which scar does not unpack yet (gzip and plain tar are)".into(),
        });
    } else {
        Box::new(input)
    };
    let mut archive = tar::Archive::new(stream);
    // Paths written by this layer: its own whiteouts never delete them.
    let mut created: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        stats.entries += 1;
        if stats.entries > MAX_ENTRIES {
            return Err(RootfsError::TooManyEntries { limit: MAX_ENTRIES });
        }
        let raw = entry.path_bytes().into_owned();
        let fail = |why: String| RootfsError::Entry {
            layer: index,
            path: String::from_utf8_lossy(&raw).into_owned(),
            why,
        };
        let Some(parts) = clean(&raw).map_err(&fail)? else {
            // The root itself (`./`): its mode is the sandbox's business.
            continue;
        };
        let (name, dirs) = parts
            .split_last()
            .ok_or_else(|| fail("an empty path".into()))?;
        let parent = resolve(root, dirs).map_err(&fail)?;
        let name_str = name.to_string_lossy();
        if name_str == OPAQUE {
            if parent.is_dir() {
                for child in fs::read_dir(&parent).map_err(io)? {
                    let child = child.map_err(io)?.path();
                    if !created.contains(&child) {
                        remove(&child).map_err(io)?;
                    }
                }
            }
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name_str.strip_prefix(WHITEOUT) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(fail("a whiteout of nothing".into()));
            }
            let target = parent.join(hidden);
            if !created.contains(&target) {
                remove(&target).map_err(io)?;
            }
            stats.whiteouts += 1;
            continue;
        }
        let path = parent.join(name);
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o1777;
        match kind {
            tar::EntryType::Directory => {
                ensure_dir(&parent).map_err(io)?;
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove(&path).map_err(io)?;
                        fs::create_dir(&path).map_err(io)?;
                    }
                    Err(_) => fs::create_dir(&path).map_err(io)?,
                }
                // Owner rwx always: later layers write into it (the sandbox mounts it
                // read-only). Never writable by others on the host (`/tmp`'s 1777 included):
                // the cache is run from.
                fs::set_permissions(&path, fs::Permissions::from_mode(host_mode(mode) | 0o700))
                    .map_err(io)?;
                stats.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                ensure_dir(&parent).map_err(io)?;
                remove(&path).map_err(io)?;
                let size = entry.header().size().unwrap_or(0);
                if stats.bytes.saturating_add(size) > MAX_UNPACKED {
                    return Err(RootfsError::TooLarge {
                        limit: MAX_UNPACKED,
                    });
                }
                let mut file = fs::File::create(&path).map_err(io)?;
                let written = io::copy(&mut (&mut entry).take(size), &mut file).map_err(io)?;
                stats.bytes += written;
                if let Ok(t) = entry.header().mtime() {
                    // Kept so that caches keyed on it (Python's .pyc) stay valid.
                    let _ = file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(t));
                }
                fs::set_permissions(&path, fs::Permissions::from_mode(host_mode(mode)))
                    .map_err(io)?;
                stats.files += 1;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fail("a symbolic link to nothing".into()))?
                    .into_owned();
                ensure_dir(&parent).map_err(io)?;
                remove(&path).map_err(io)?;
                symlink(OsStr::from_bytes(&target), &path).map_err(io)?;
                stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fail("a hard link to nothing".into()))?
                    .into_owned();
                let source = link_source(root, &target).map_err(&fail)?;
                ensure_dir(&parent).map_err(io)?;
                if source != path {
                    remove(&path).map_err(io)?;
                    fs::hard_link(&source, &path).map_err(io)?;
                }
                stats.hardlinks += 1;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                stats.skipped += 1;
                continue;
            }
            // PAX and GNU headers are folded into the entries they describe; anything else
            // (sparse files, vendor types) is not what an image layer holds.
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(fail(format!(
                    "an entry of tar type {:?}, which scar does not unpack",
                    other.as_byte() as char
                )));
            }
        }
        created.insert(path);
    }
    Ok(())
}

/// An entry's mode as its file gets it on the host: permission bits only, none that lets the
/// group or others write (set-user-ID, set-group-ID and sticky bits are dropped).
fn host_mode(mode: u32) -> u32 {
    mode & 0o755
}

/// The file a hard link entry names (`target`, a path inside the image), which an earlier
/// entry must have made and which is not a folder; the reason when it is not so.
fn link_source(root: &Path, target: &[u8]) -> Result<PathBuf, String> {
    let parts = clean(target)
        .map_err(|why| format!("its link target: {why}"))?
        .ok_or_else(|| "a hard link to the root".to_owned())?;
    let (name, dirs) = parts
        .split_last()
        .ok_or_else(|| "a hard link to nothing".to_owned())?;
    let source = resolve(root, dirs)?.join(name);
    match fs::symlink_metadata(&source) {
        Ok(m) if !m.is_dir() => Ok(source),
        Ok(_) => Err("a hard link to a folder".into()),
        Err(_) => Err(format!(
            "a hard link to `{}`, which no earlier entry made",
            String::from_utf8_lossy(target)
        )),
    }
}

/// Where root file systems are kept: `rootfs/` in scar's cache folder (`$SCAR_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/scar`, else `~/.cache/scar`).
#[must_use]
pub fn cache_root() -> Option<PathBuf> {
    crate::cache::dir().map(|d| d.join("rootfs"))
}

/// The name of the root file system made of layers with these digests, in this order: the
/// same layers always unpack to the same folder, and any other list to another.
#[must_use]
pub fn cache_key(layer_digests: &[&str]) -> String {
    let listed: String = layer_digests.iter().map(|d| format!("{d}\n")).collect();
    super::digest(listed.as_bytes())
        .trim_start_matches("sha256:")
        .to_owned()
}

/// The root file system `key` in `cache`, made by `unpack` (into the empty folder it is
/// given) when it is not there yet; the stats are `None` when it was. The folder is made under
/// a temporary name and renamed when complete, so a folder under the key's name is whole; a
/// run that stopped midway leaves a partial one that the next run for the key removes.
///
/// # Errors
/// What `unpack` returns, or an I/O error.
pub fn cached(
    cache: &Path,
    key: &str,
    unpack: impl FnOnce(&Path) -> Result<Unpacked, RootfsError>,
) -> Result<(PathBuf, Option<Unpacked>), RootfsError> {
    let io = |source| RootfsError::Io { layer: 0, source };
    let done = cache.join(key);
    if done.is_dir() {
        return Ok((done, None));
    }
    crate::cache::private_dir(cache).map_err(io)?;
    let prefix = format!("{key}.partial-");
    for stale in fs::read_dir(cache).map_err(io)? {
        let stale = stale.map_err(io)?;
        let name = stale.file_name().to_string_lossy().into_owned();
        let alive = name
            .strip_prefix(&prefix)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
        if name.starts_with(&prefix) && !alive {
            remove(&stale.path()).map_err(io)?;
        }
    }
    let partial = cache.join(format!("{prefix}{}", std::process::id()));
    remove(&partial).map_err(io)?;
    {
        use std::os::unix::fs::DirBuilderExt as _;
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&partial)
            .map_err(io)?;
    }
    let stats = match unpack(&partial) {
        Ok(s) => s,
        Err(e) => {
            let _ = remove(&partial);
            return Err(e);
        }
    };
    match fs::rename(&partial, &done) {
        Ok(()) => Ok((done, Some(stats))),
        // Another run finished the same layers first: theirs is as good.
        Err(_) if done.is_dir() => {
            remove(&partial).map_err(io)?;
            Ok((done, None))
        }
        Err(e) => Err(io(e)),
    }
}

/// The components of an archive path, `.` and empty ones left out; `None` for the root.
///
/// # Errors
/// A `..` component.
fn clean(raw: &[u8]) -> Result<Option<Vec<OsString>>, String> {
    let mut parts = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("a `..` component (it would leave the root)".into()),
            c => parts.push(OsStr::from_bytes(c).to_owned()),
        }
    }
    Ok((!parts.is_empty()).then_some(parts))
}

/// The real path of folder `dirs` inside `root`, every symbolic link on the way followed as
/// the container would follow it: an absolute target from `root`, `..` never above `root`.
/// Components that do not exist yet are kept as they are (the caller makes them).
///
/// # Errors
/// More than [`MAX_LINKS`] links, or a component that is a file where a folder must be.
fn resolve(root: &Path, dirs: &[OsString]) -> Result<PathBuf, String> {
    resolve_path(root, dirs, false)
}

/// The real path of `rel` (`etc/resolv.conf`) inside `root`, every symbolic link on the way,
/// the last one included, followed as the container would follow it (see [`resolve`]); it may
/// not exist.
///
/// # Errors
/// A `..` in `rel`, more than 40 links, or a file where a folder must be.
pub fn resolve_in(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let parts = clean(rel.as_bytes())?.unwrap_or_default();
    resolve_path(root, &parts, true)
}

/// [`resolve`], where the last component may be a file when `file_ok`.
fn resolve_path(root: &Path, dirs: &[OsString], file_ok: bool) -> Result<PathBuf, String> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut todo: Vec<OsString> = dirs.iter().rev().cloned().collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == "." || c.is_empty() {
            continue;
        }
        if c == ".." {
            resolved.pop();
            continue;
        }
        let here: PathBuf = root
            .iter()
            .chain(resolved.iter().map(OsString::as_os_str))
            .collect();
        let candidate = here.join(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!("more than {MAX_LINKS} symbolic links on its path"));
                }
                let target = fs::read_link(&candidate).map_err(|e| e.to_string())?;
                let bytes = target.as_os_str().as_bytes();
                if bytes.starts_with(b"/") {
                    resolved.clear();
                }
                for part in bytes.split(|b| *b == b'/').rev() {
                    todo.push(OsStr::from_bytes(part).to_owned());
                }
            }
            Ok(m) if !m.is_dir() && file_ok && todo.is_empty() => resolved.push(c),
            Ok(m) if !m.is_dir() => {
                return Err(format!(
                    "`{}` is a file, not a folder",
                    Path::new("/")
                        .join(candidate.strip_prefix(root).unwrap_or(&candidate))
                        .display()
                ));
            }
            _ => resolved.push(c),
        }
    }
    Ok(root
        .iter()
        .chain(resolved.iter().map(OsString::as_os_str))
        .collect())
}

/// Makes `dir` (already resolved inside the root) and its missing parents.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Removes whatever is at `path` (a folder with its content), not following a link; nothing
/// there is fine.
fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            // A folder a layer made read-only still empties.
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
            make_removable(path)?;
            fs::remove_dir_all(path)
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the owner rwx on every folder under `dir`, so that it can be removed.
fn make_removable(dir: &Path) -> io::Result<()> {
    for child in fs::read_dir(dir)? {
        let child = child?;
        if child.file_type()?.is_dir() {
            let p = child.path();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700))?;
            make_removable(&p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar entry with any path, `..` included (the tar crate's own setters refuse it).
    fn entry(out: &mut Vec<u8>, kind: tar::EntryType, path: &str, link: &str, body: &[u8]) {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(body.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn file(out: &mut Vec<u8>, path: &str, body: &str) {
        entry(out, tar::EntryType::Regular, path, "", body.as_bytes());
    }

    fn finish(mut out: Vec<u8>) -> Vec<u8> {
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn gz(tar: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(tar).expect("gzip");
        e.finish().expect("gzip")
    }

    fn read(root: &Path, p: &str) -> Option<String> {
        fs::read_to_string(root.join(p)).ok()
    }

    #[test]
    fn whiteouts_and_opaque_folders_hide_the_layers_below_not_their_own() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        let mut base = Vec::new();
        entry(&mut base, tar::EntryType::Directory, "etc/", "", b"");
        file(&mut base, "etc/gone", "1");
        file(&mut base, "etc/kept", "1");
        entry(&mut base, tar::EntryType::Directory, "opt/app/", "", b"");
        file(&mut base, "opt/app/old", "1");
        entry(
            &mut base,
            tar::EntryType::Directory,
            "opt/app/sub/",
            "",
            b"",
        );
        file(&mut base, "opt/app/sub/deep", "1");
        let mut top = Vec::new();
        file(&mut top, "etc/.wh.gone", "");
        file(&mut top, "opt/app/new-before", "2");
        file(&mut top, "opt/app/.wh..wh..opq", "");
        file(&mut top, "opt/app/new-after", "2");
        let stats = apply_layers(
            root,
            [gz(&finish(base)), finish(top)].iter().map(|b| &b[..]),
        )
        .expect("applies");
        assert_eq!(read(root, "etc/gone"), None);
        assert_eq!(read(root, "etc/kept").as_deref(), Some("1"));
        assert!(!root.join("etc/.wh.gone").exists());
        let mut app: Vec<String> = fs::read_dir(root.join("opt/app"))
            .expect("app")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .collect();
        app.sort();
        assert_eq!(app, ["new-after", "new-before"]);
        assert_eq!(stats.whiteouts, 2);
        assert_eq!(stats.files, 6);
    }

    #[test]
    fn hard_links_share_the_file_and_links_pointing_out_resolve_inside() {
        use std::os::unix::fs::MetadataExt;
        let outside = tempfile::tempdir().expect("tmp");
        let sentinel = outside.path().join("sentinel");
        fs::write(&sentinel, "host").expect("sentinel");
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("root");
        let mut base = Vec::new();
        file(&mut base, "bin/tool", "#!/bin/sh\n");
        entry(
            &mut base,
            tar::EntryType::Link,
            "bin/alias",
            "bin/tool",
            b"",
        );
        entry(
            &mut base,
            tar::EntryType::Symlink,
            "evil",
            "/../../etc",
            b"",
        );
        entry(&mut base, tar::EntryType::Symlink, "up", "../../..", b"");
        let far = format!("../../../../../../..{}", outside.path().display());
        entry(&mut base, tar::EntryType::Symlink, "far", &far, b"");
        entry(&mut base, tar::EntryType::Char, "dev/null", "", b"");
        let mut top = Vec::new();
        file(&mut top, "evil/passwd", "root:x:0:0");
        file(&mut top, "up/escaped", "x");
        file(&mut top, "far/sentinel", "overwritten");
        entry(
            &mut top,
            tar::EntryType::Link,
            "hard-out",
            "/far/sentinel",
            b"",
        );
        let mut third = Vec::new();
        file(&mut third, "far/.wh.sentinel", "");
        let layers = [finish(base), finish(top), finish(third)];
        let stats = apply_layers(&root, layers.iter().map(|b| &b[..])).expect("applies");
        let (a, b) = (
            fs::metadata(root.join("bin/tool")).expect("tool"),
            fs::metadata(root.join("bin/alias")).expect("alias"),
        );
        assert_eq!(a.ino(), b.ino());
        // Through the links, as the container would see them: inside the root.
        assert_eq!(read(&root, "etc/passwd").as_deref(), Some("root:x:0:0"));
        assert_eq!(read(&root, "escaped").as_deref(), Some("x"));
        let inside = root.join(outside.path().strip_prefix("/").expect("absolute"));
        assert!(!inside.join("sentinel").exists(), "whiteout applied inside");
        assert_eq!(read(&root, "hard-out").as_deref(), Some("overwritten"));
        // Nothing outside changed.
        assert_eq!(fs::read_to_string(&sentinel).expect("sentinel"), "host");
        assert!(!dir.path().join("escaped").exists());
        assert_eq!(
            fs::read_link(root.join("evil")).expect("link"),
            Path::new("/../../etc")
        );
        assert!(!root.join("dev/null").exists());
        assert_eq!((stats.skipped, stats.hardlinks, stats.symlinks), (1, 2, 3));
    }

    #[test]
    fn dot_dot_entries_and_dangling_hard_links_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("root");
        for (kind, path, link) in [
            (tar::EntryType::Regular, "../escape", ""),
            (tar::EntryType::Regular, "a/../../escape", ""),
            (tar::EntryType::Link, "h", "../../etc/passwd"),
            (tar::EntryType::Link, "h", "nothing/here"),
        ] {
            let mut l = Vec::new();
            entry(&mut l, kind, path, link, b"");
            let e = apply_layers(&root, [finish(l)].iter().map(|b| &b[..]))
                .expect_err("refused")
                .to_string();
            assert!(e.contains("layer 0") && e.contains(path), "{e}");
        }
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn a_cached_root_is_unpacked_once_and_a_failed_one_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut l = Vec::new();
        file(&mut l, "etc/os-release", "ID=test");
        let layer = finish(l);
        let key = cache_key(&["sha256:aa", "sha256:bb"]);
        assert_ne!(key, cache_key(&["sha256:bb", "sha256:aa"]));
        let unpack = |root: &Path| apply_layers(root, [&layer[..]]);
        let (root, first) = cached(dir.path(), &key, unpack).expect("first");
        assert_eq!(first.map(|s| s.files), Some(1));
        let (again, second) =
            cached(dir.path(), &key, |_| panic!("not unpacked again")).expect("second");
        assert_eq!((again.as_path(), second), (root.as_path(), None));
        assert_eq!(read(&root, "etc/os-release").as_deref(), Some("ID=test"));
        // A stale partial folder of a run that died goes; a failed unpack leaves none.
        fs::create_dir_all(dir.path().join("k.partial-4000000000/ro")).expect("stale");
        let mut bad = Vec::new();
        entry(&mut bad, tar::EntryType::Regular, "../x", "", b"");
        let bad = finish(bad);
        assert!(cached(dir.path(), "k", |root| apply_layers(root, [&bad[..]])).is_err());
        let left: Vec<_> = fs::read_dir(dir.path())
            .expect("cache")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(left, [OsString::from(&key)]);
    }

    #[test]
    fn a_file_where_a_folder_must_be_is_an_error_and_links_loop_no_more_than_forty_times() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        let mut l = Vec::new();
        file(&mut l, "f", "1");
        file(&mut l, "f/x", "1");
        let e = apply_layers(root, [finish(l)].iter().map(|b| &b[..]))
            .expect_err("file as folder")
            .to_string();
        assert!(e.contains("`/f` is a file"), "{e}");
        let mut l = Vec::new();
        entry(&mut l, tar::EntryType::Symlink, "loop", "loop", b"");
        file(&mut l, "loop/x", "1");
        let e = apply_layers(root, [finish(l)].iter().map(|b| &b[..]))
            .expect_err("loop")
            .to_string();
        assert!(e.contains("more than 40"), "{e}");
    }

    #[test]
    fn a_small_layer_of_empty_entries_cannot_use_up_the_inodes() {
        // Regression (issue 23, finding 11): the cap counted file bytes only, so a layer of a
        // million empty files (a few kilobytes gzipped) made a million inodes. Entries are
        // counted across layers: here the layers before this one held all but two.
        let dir = tempfile::tempdir().expect("tmp");
        let mut l = Vec::new();
        for i in 0..3 {
            file(&mut l, &format!("empty-{i}"), "");
        }
        let layer = gz(&finish(l));
        let mut stats = Unpacked {
            entries: MAX_ENTRIES - 2,
            ..Unpacked::default()
        };
        let e = apply_layer(dir.path(), 1, &layer[..], &mut stats).expect_err("capped");
        assert!(matches!(e, RootfsError::TooManyEntries { .. }), "{e}");
        assert!(!dir.path().join("empty-2").exists());
    }

    #[test]
    fn nothing_unpacked_is_writable_by_other_users_of_the_host() {
        // Regression (issue 23, finding 10): folders kept 0777 (and 1777) from the layer, so
        // any user of the machine could change what a function runs.
        let dir = tempfile::tempdir().expect("tmp");
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, mode) in [
            ("open/", tar::EntryType::Directory, 0o777),
            ("sticky/", tar::EntryType::Directory, 0o1777),
            ("open/file", tar::EntryType::Regular, 0o4777),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(0);
            h.set_cksum();
            b.append_data(&mut h, path, &[][..]).expect("entry");
        }
        let layer = b.into_inner().expect("tar");
        apply_layers(dir.path(), [&layer[..]]).expect("applied");
        for (p, want) in [("open", 0o755), ("sticky", 0o755), ("open/file", 0o755)] {
            let mode = fs::metadata(dir.path().join(p))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, want, "{p}");
        }
    }
}
