//! The trust root: the one folder a command may read manifests, overlay bases and scripts from.
//!
//! A stack's files name other files: an overlay its `base`, a function its `script`, and any
//! folder or file on the way may be a symbolic link. Whoever can edit the repository (a pull
//! request, a pushed commit) writes those names, so every one of them is resolved (links
//! followed, `..` taken) and must land inside the trust root, or it is refused before anything
//! there is read, quoted or planned.
//!
//! Which folder it is:
//! - `--root DIR` (or `SCAR_ROOT`), when given;
//! - following Git (`scar watch --git`), the export of the commit;
//! - else the Git work tree that holds the stack directory as it was named (the nearest
//!   folder above it, itself not a link, that holds `.git`);
//! - else the stack directory itself.

use std::path::{Component, Path, PathBuf};

/// Where a trust root came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--root` or `SCAR_ROOT`.
    Explicit,
    /// The Git work tree holding the stack directory.
    WorkTree,
    /// The stack directory itself (it is in no Git work tree).
    StackDir,
    /// The files of a commit, exported by `scar watch --git`.
    Export,
}

/// The folder everything a command reads must resolve into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRoot {
    /// Canonical (links resolved, absolute).
    path: PathBuf,
    source: Source,
}

impl TrustRoot {
    /// `dir` as named outright (`--root`, or an export).
    ///
    /// # Errors
    /// When `dir` is not a folder that can be resolved.
    pub fn at(dir: &Path, source: Source) -> Result<TrustRoot, String> {
        let path = std::fs::canonicalize(dir)
            .map_err(|e| format!("the trust root {}: {e}", dir.display()))?;
        if !path.is_dir() {
            return Err(format!("the trust root {} is not a folder", dir.display()));
        }
        Ok(TrustRoot { path, source })
    }

    /// The trust root of the stack directory `dir` when none is named: the Git work tree that
    /// holds it, else `dir` itself.
    ///
    /// The work tree is looked for along the path as named, not where links lead: a folder
    /// that is a link (a committed `manifests/x -> /home/me/other-repo`) is never taken for a
    /// work tree, so a link cannot choose the root.
    ///
    /// # Errors
    /// When `dir` cannot be resolved.
    pub fn for_dir(dir: &Path) -> Result<TrustRoot, String> {
        let absolute = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| format!("the current folder: {e}"))?
                .join(dir)
        };
        let named = lexical(&absolute);
        for candidate in named.ancestors() {
            let is_link = std::fs::symlink_metadata(candidate)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(true);
            if !is_link && std::fs::symlink_metadata(candidate.join(".git")).is_ok() {
                return TrustRoot::at(candidate, Source::WorkTree);
            }
        }
        TrustRoot::at(dir, Source::StackDir)
    }

    /// The canonical folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where it came from.
    #[must_use]
    pub fn source(&self) -> Source {
        self.source
    }

    /// True when the canonical path `real` is the root or inside it.
    #[must_use]
    pub fn holds(&self, real: &Path) -> bool {
        real.starts_with(&self.path)
    }

    /// `path` resolved (links followed), when it exists and resolves inside the root.
    ///
    /// # Errors
    /// [`Outside::Missing`] when it cannot be resolved, [`Outside::Elsewhere`] when it
    /// resolves outside the root.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, Outside> {
        let real = std::fs::canonicalize(path).map_err(|_| Outside::Missing)?;
        if self.holds(&real) {
            Ok(real)
        } else {
            Err(Outside::Elsewhere)
        }
    }

    /// The root as messages show it: relative to the current folder when one holds the other
    /// (`.`, `../..`, `repo`), else absolute.
    #[must_use]
    pub fn shown(&self) -> PathBuf {
        let Ok(here) = std::env::current_dir().and_then(std::fs::canonicalize) else {
            return self.path.clone();
        };
        if let Ok(below) = self.path.strip_prefix(&here) {
            return if below.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                below.to_path_buf()
            };
        }
        match here.strip_prefix(&self.path) {
            Ok(above) => above.components().map(|_| "..").collect(),
            Err(_) => self.path.clone(),
        }
    }

    /// A sentence naming the root and why it is the root, for hints.
    #[must_use]
    pub fn describe(&self) -> String {
        let why = match self.source {
            Source::Explicit => "named by --root",
            Source::WorkTree => "the Git work tree that holds the stack",
            Source::StackDir => "the stack directory, which is in no Git work tree",
            Source::Export => "the commit's files",
        };
        format!("{} ({why})", self.shown().display())
    }

    /// The hint for a path refused for resolving outside the root.
    #[must_use]
    pub fn hint(&self) -> String {
        let more = match self.source {
            Source::Explicit | Source::Export => "",
            Source::WorkTree | Source::StackDir => {
                "; name a folder that holds every file the stack uses with --root (or SCAR_ROOT)"
            }
        };
        format!(
            "scar reads nothing outside the trust root {}{more}",
            self.describe()
        )
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// It does not exist (or a link on its way leads nowhere).
    Missing,
    /// It resolves outside the trust root.
    Elsewhere,
}

/// `path` with `.` dropped and each `..` taking away the component before it, without
/// looking at the file system.
#[must_use]
pub fn lexical(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_tree_is_found_along_the_path_as_named_never_through_a_link() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = dir.path().join("repo");
        let other = dir.path().join("other");
        for d in [
            repo.join(".git"),
            repo.join("manifests/wc"),
            other.join(".git"),
        ] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let real_repo = std::fs::canonicalize(&repo).expect("repo");
        let root = TrustRoot::for_dir(&repo.join("manifests/wc")).expect("root");
        assert_eq!(
            (root.path(), root.source()),
            (real_repo.as_path(), Source::WorkTree)
        );
        // A committed link to another repository of the user's: still this repository's root,
        // and the link's target is outside it.
        std::os::unix::fs::symlink(&other, repo.join("manifests/x")).expect("link");
        let root = TrustRoot::for_dir(&repo.join("manifests/x")).expect("root");
        assert_eq!(root.path(), real_repo);
        assert_eq!(
            root.resolve(&repo.join("manifests/x")),
            Err(Outside::Elsewhere)
        );
        // No work tree: the folder itself.
        let alone = dir.path().join("alone");
        std::fs::create_dir(&alone).expect("mkdir");
        let root = TrustRoot::for_dir(&alone).expect("root");
        assert_eq!(root.source(), Source::StackDir);
        assert_eq!(root.resolve(&alone.join("..")), Err(Outside::Elsewhere));
    }

    #[test]
    fn lexical_paths_take_dot_dot_without_the_file_system() {
        assert_eq!(lexical(Path::new("/a/b/../c/./d")), Path::new("/a/c/d"));
        assert_eq!(lexical(Path::new("/../a")), Path::new("/a"));
        assert_eq!(lexical(Path::new("../a/..")), Path::new(".."));
    }
}
