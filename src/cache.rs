//! scar's cache folder (`$SCAR_CACHE_DIR`, else `$XDG_CACHE_HOME/scar`, else
//! `~/.cache/scar`): base image layers, unpacked root file systems, Git mirrors and their
//! exports. What is there may hold a private repository, scripts and a Git URL with its
//! token, and what is there is run: every folder scar makes there is its owner's only
//! (0700), and one that another user owns, or that others may write to, is refused rather
//! than used.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The cache folder, when one can be named (it may not exist yet).
#[must_use]
pub fn dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("SCAR_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Ok(d) = std::env::var("XDG_CACHE_HOME") {
        return Some(Path::new(&d).join("scar"));
    }
    std::env::var("HOME")
        .ok()
        .map(|h| Path::new(&h).join(".cache/scar"))
}

/// Makes `path` (and the folders above it that are missing) readable by its owner only, or
/// checks the one there: it must be a folder (not a link) owned by this user; group and
/// other permissions are taken away.
///
/// # Errors
/// When it cannot be made, is not a folder, or belongs to another user.
pub fn private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let meta = check_owned(path)?;
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

/// Checks that `path` (a file or folder, not followed if a link) belongs to this user; its
/// metadata.
///
/// # Errors
/// When it cannot be read, is a link, or belongs to another user.
pub fn check_owned(path: &Path) -> io::Result<std::fs::Metadata> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: {why}; scar does not use what others could have put in its cache (remove it, or set SCAR_CACHE_DIR)",
                path.display()
            ),
        ))
    };
    if meta.file_type().is_symlink() {
        return refuse("a link where scar keeps a folder".into());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return refuse(format!(
            "owned by uid {}, not by this user ({me})",
            meta.uid()
        ));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_made_private_and_loose_ones_of_ours_are_tightened() {
        let dir = tempfile::tempdir().expect("tmp");
        let made = dir.path().join("a/b");
        private_dir(&made).expect("made");
        for p in [dir.path().join("a"), made.clone()] {
            let mode = std::fs::metadata(&p).expect("meta").mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", p.display());
        }
        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        private_dir(&made).expect("again");
        assert_eq!(
            std::fs::metadata(&made).expect("meta").mode() & 0o777,
            0o700
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&made, &link).expect("link");
        assert!(private_dir(&link).is_err(), "a link is refused");
        // Another user's folder (root can make one here): refused, not used.
        if rustix::process::geteuid().is_root() {
            let theirs = dir.path().join("theirs");
            std::fs::create_dir(&theirs).expect("mkdir");
            std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).expect("chown");
            let e = private_dir(&theirs).expect_err("refused");
            assert!(e.to_string().contains("owned by uid 4242"), "{e}");
        }
    }
}
