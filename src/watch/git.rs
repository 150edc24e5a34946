//! Following a Git remote, as Flux and Argo CD do: scar keeps its own bare mirror of one
//! branch, fetches it, and applies the tree of the commit the branch points at, exported
//! from Git's objects. A worktree someone edits is never read, so an uncommitted change
//! cannot reach AWS; the commit applied is reported.
//!
//! Runs the `git` program (`GIT_TERMINAL_PROMPT=0`, stdin closed, the `ext::` transport
//! refused); the repository's own credentials setup (a credential helper, SSH keys) applies.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How many exported trees are kept (the current one and the one before).
const TREES_KEPT: usize = 2;

/// The most a commit's files may hold, in bytes and in entries: an export is written to disk
/// and walked, and a pushed commit decides its size.
pub const MAX_EXPORT_BYTES: u64 = 1024 * 1024 * 1024;
/// See [`MAX_EXPORT_BYTES`].
pub const MAX_EXPORT_ENTRIES: u64 = 200_000;

/// The caps of one export.
#[derive(Debug, Clone, Copy)]
struct Caps {
    bytes: u64,
    entries: u64,
}

const CAPS: Caps = Caps {
    bytes: MAX_EXPORT_BYTES,
    entries: MAX_EXPORT_ENTRIES,
};

/// How long a run waits for another scar (a second watcher on the same repository) to finish
/// with the mirror.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// Why following the remote failed; each says what scar was doing and what it met.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The URL could be read as an option, or holds control characters.
    #[error("--git `{0}` is not a repository URL")]
    Url(String),
    /// A branch name Git refuses, or one that could be read as an option.
    #[error("--branch `{0}` is not a branch name")]
    Branch(String),
    /// Not a commit id.
    #[error("`{0}` is not a commit id")]
    Commit(String),
    /// `git` could not be started.
    #[error("running git: {0} (is git installed?)")]
    Spawn(#[source] std::io::Error),
    /// A git command failed; what it said, without the URL's token.
    #[error("git {command}: {said}")]
    Failed {
        /// The git subcommand.
        command: String,
        /// Its standard error, trimmed.
        said: String,
    },
    /// A file or folder of the cache could not be made, read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// Which.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The cache is not safe to use (not private, not the user's).
    #[error(transparent)]
    Cache(#[from] std::io::Error),
    /// Another scar holds the mirror.
    #[error("another scar has held {} for {} s; is a git command hanging?", path.display(), LOCK_WAIT.as_secs())]
    Busy {
        /// The mirror's lock file.
        path: PathBuf,
    },
    /// The commit could not be exported.
    #[error("exporting {commit}: {why}")]
    Export {
        /// The commit, as scar shows it.
        commit: String,
        /// Why.
        #[source]
        why: ExportError,
    },
}

/// Why a commit's files could not be exported, or an export differs from its commit.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the archive, or writing or walking the files, failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The commit is larger than [`MAX_EXPORT_ENTRIES`].
    #[error("the commit holds more than {0} files and folders")]
    TooManyEntries(u64),
    /// The commit is larger than [`MAX_EXPORT_BYTES`].
    #[error("the commit's files hold more than {0} bytes")]
    TooManyBytes(u64),
    /// A file of the commit is not in the export.
    #[error("`{0}` of the commit is missing")]
    Missing(String),
    /// A file in the export is not the commit's.
    #[error("`{0}` is not in the commit")]
    Extra(String),
    /// `git archive` failed, or the export's task did.
    #[error("{0}")]
    Git(Box<GitError>),
}

/// The [`GitError::File`] of `path`.
fn at(path: &Path) -> impl FnOnce(std::io::Error) -> GitError + '_ {
    move |source| GitError::File {
        path: path.to_owned(),
        source,
    }
}

/// One branch of one remote, mirrored under a cache directory.
///
/// The mirror (`git/mirrors/KEY.git`, which holds the URL and its token) is kept apart from
/// the exports (`git/trees/KEY/COMMIT`), so that no path inside an export leads to it by
/// climbing a folder or two. Every change to either (init, fetch, export, prune) is made
/// holding `git/mirrors/KEY.lock`, so two watchers of one repository (one per environment)
/// never write the same folder.
#[derive(Debug, Clone)]
pub struct GitSource {
    url: String,
    branch: String,
    mirror: PathBuf,
    lock: PathBuf,
    trees: PathBuf,
}

/// The files of one commit, exported; the mirror's lock is held (no other scar prunes or
/// rewrites them) until this is dropped.
#[derive(Debug)]
pub struct Export {
    /// The folder holding the commit's files: the trust root of what is read from it.
    pub dir: PathBuf,
    /// Links that led outside the commit's files, left out of the export.
    pub left_out: Vec<String>,
    _lock: std::fs::File,
}

impl GitSource {
    /// The source for `branch` of `url`, kept under `cache`.
    ///
    /// # Errors
    /// A URL or branch that could be read as an option, or a branch name Git refuses.
    pub fn new(url: &str, branch: &str, cache: &Path) -> Result<GitSource, GitError> {
        // Control characters could write more than the URL into the mirror's config.
        if url.starts_with('-') || url.trim().is_empty() || url.chars().any(char::is_control) {
            return Err(GitError::Url(url.to_owned()));
        }
        let refused = branch.starts_with('-')
            || branch.is_empty()
            || branch.contains("..")
            || branch
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
        if refused {
            return Err(GitError::Branch(branch.to_owned()));
        }
        let key = crate::model::short_hash(&format!("{url}#{branch}"));
        let git = cache.join("git");
        Ok(GitSource {
            url: url.to_owned(),
            branch: branch.to_owned(),
            mirror: git.join("mirrors").join(format!("{key}.git")),
            lock: git.join("mirrors").join(format!("{key}.lock")),
            trees: git.join("trees").join(key),
        })
    }

    /// The URL as logs show it: without a password or token in it.
    #[must_use]
    pub fn shown_url(&self) -> String {
        redact(&self.url)
    }

    /// The branch followed.
    #[must_use]
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The git command on the mirror.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("git");
        c.arg("-c")
            .arg("protocol.ext.allow=never")
            .arg("--git-dir")
            .arg(&self.mirror)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        c
    }

    /// Runs git on the mirror; its output.
    async fn raw(&self, args: &[&str]) -> Result<Vec<u8>, GitError> {
        let out = Command::from(self.command(args))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(GitError::Spawn)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.failed(args, &out.stderr))
        }
    }

    /// What a failed git command said, without the URL's token.
    fn failed(&self, args: &[&str], stderr: &[u8]) -> GitError {
        GitError::Failed {
            command: args.first().copied().unwrap_or_default().to_owned(),
            said: String::from_utf8_lossy(stderr)
                .trim()
                .replace(&self.url, &redact(&self.url)),
        }
    }

    /// Runs git on the mirror; its output as trimmed text.
    async fn git(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.raw(args).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Takes the mirror's lock (waiting up to [`LOCK_WAIT`] for another scar to finish).
    async fn locked(&self) -> Result<std::fs::File, GitError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let folder = self.lock.parent().unwrap_or(Path::new("."));
        // The cache and its git folder too: ones an earlier scar made 0755 are tightened.
        for private in folder
            .ancestors()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            crate::cache::private_dir(private)?;
        }
        crate::cache::private_dir(folder)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(at(&self.lock))?;
        let started = tokio::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(GitError::Busy {
                        path: self.lock.clone(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(at(&self.lock)(e));
                }
            }
        }
    }

    /// Fetches the branch; the commit it points at now.
    ///
    /// # Errors
    /// Git's message when the mirror cannot be made or the fetch fails.
    pub async fn fetch(&self) -> Result<String, GitError> {
        let _lock = self.locked().await?;
        if !self.mirror.join("HEAD").is_file() {
            self.init().await?;
        }
        crate::cache::check_owned(&self.mirror)?;
        let refspec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        // The URL (which may carry a token) is in the mirror's config, not on a command line
        // every user of the machine can read.
        self.git(&["fetch", "--quiet", "--no-tags", "origin", &refspec])
            .await?;
        self.head().await
    }

    /// Makes the bare mirror with its remote, under a temporary name renamed when whole (a
    /// mirror whose remote was never written is never left behind).
    async fn init(&self) -> Result<(), GitError> {
        let partial = self
            .mirror
            .with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        crate::cache::private_dir(&partial)?;
        let made = GitSource {
            mirror: partial.clone(),
            ..self.clone()
        };
        made.git(&["init", "--quiet", "--bare"]).await?;
        made.write_remote()?;
        let _ = std::fs::remove_dir_all(&self.mirror);
        std::fs::rename(&partial, &self.mirror).map_err(at(&self.mirror))
    }

    /// Records the remote in the mirror's config, readable by its owner only (before the URL
    /// is written into it).
    fn write_remote(&self) -> Result<(), GitError> {
        use std::io::Write as _;
        use std::os::unix::fs::PermissionsExt as _;
        let config = self.mirror.join("config");
        let quoted = self.url.replace('\\', "\\\\").replace('"', "\\\"");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))
            .map_err(at(&config))?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .map_err(at(&config))?;
        writeln!(f, "[remote \"origin\"]\n\turl = \"{quoted}\"").map_err(at(&config))?;
        Ok(())
    }

    /// The commit the mirrored branch points at (as last fetched).
    ///
    /// # Errors
    /// When the branch was never fetched.
    pub async fn head(&self) -> Result<String, GitError> {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{}^{{commit}}", self.branch),
        ])
        .await
    }

    /// The files of `commit`, exported into a folder of their own (once per commit, checked
    /// against the commit's tree each time it is used); older exports are removed but for the
    /// last [`TREES_KEPT`]. The mirror's lock is held until the [`Export`] is dropped.
    ///
    /// # Errors
    /// When Git cannot export the commit, it holds more than [`MAX_EXPORT_BYTES`] or
    /// [`MAX_EXPORT_ENTRIES`], or the files cannot be written.
    pub async fn tree(&self, commit: &str) -> Result<Export, GitError> {
        if !commit.chars().all(|c| c.is_ascii_hexdigit()) || commit.len() < 7 {
            return Err(GitError::Commit(commit.to_owned()));
        }
        let lock = self.locked().await?;
        crate::cache::private_dir(&self.trees)?;
        let listed = self.listing(commit).await?;
        let dir = self.trees.join(commit);
        let record = self.trees.join(format!(".{commit}.left-out"));
        if dir.is_dir() {
            crate::cache::check_owned(&dir)?;
            let known = std::fs::read(&record).map_or_else(|_| Vec::new(), |b| nul_list(&b));
            match complete(&dir, &listed, &known) {
                Ok(found) if found.is_empty() => {
                    return Ok(Export {
                        dir,
                        left_out: known,
                        _lock: lock,
                    });
                }
                Ok(_) => {
                    tracing::warn!(
                        commit,
                        "an export gained links that lead outside it; exporting it again"
                    );
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Err(e) => {
                    tracing::warn!(
                        commit,
                        problem = %e,
                        "an export differs from its commit; exporting it again"
                    );
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        self.remove_partials();
        let partial = self
            .trees
            .join(format!(".{commit}.partial-{}", std::process::id()));
        crate::cache::private_dir(&partial)?;
        let archive = self.command(&["archive", "--format=tar", commit]);
        let (to, shown) = (partial.clone(), self.clone());
        let exported = tokio::task::spawn_blocking(move || export(archive, &to, &shown, CAPS))
            .await
            .map_err(|e| GitError::Export {
                commit: commit.to_owned(),
                why: ExportError::Io(std::io::Error::other(e)),
            })?
            .and_then(|()| complete(&partial, &listed, &[]));
        let left_out = match exported {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(GitError::Export {
                    commit: short(commit).to_owned(),
                    why: e,
                });
            }
        };
        for link in &left_out {
            tracing::info!(
                commit,
                link,
                "a link in the commit leads outside it: left out"
            );
        }
        let written: Vec<u8> = left_out.iter().flat_map(|l| l.bytes().chain([0])).collect();
        std::fs::write(&record, written).map_err(at(&record))?;
        std::fs::rename(&partial, &dir).map_err(at(&dir))?;
        self.prune(commit);
        Ok(Export {
            dir,
            left_out,
            _lock: lock,
        })
    }

    /// Every file and link of `commit` (paths relative to its root): what an export of it
    /// holds.
    async fn listing(&self, commit: &str) -> Result<Vec<String>, GitError> {
        let out = self
            .raw(&["ls-tree", "-r", "-z", "--full-tree", "--name-only", commit])
            .await?;
        Ok(nul_list(&out))
    }

    /// Removes exports that a run which stopped midway left (the lock is held: none is
    /// being written).
    fn remove_partials(&self) {
        let Ok(entries) = std::fs::read_dir(&self.trees) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().contains(".partial-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Removes exported trees but the newest [`TREES_KEPT`] (and `keep`).
    fn prune(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.trees) else {
            return;
        };
        let mut trees: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_name() != keep && !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        trees.sort();
        let surplus = trees.len().saturating_sub(TREES_KEPT - 1);
        for (_, path) in trees.into_iter().take(surplus) {
            let _ = std::fs::remove_dir_all(&path);
            if let Some(name) = path.file_name() {
                let record = format!(".{}.left-out", name.to_string_lossy());
                let _ = std::fs::remove_file(self.trees.join(record));
            }
        }
    }
}

/// The paths of a NUL-separated list (`git ls-tree -z`, an export's record of links left out).
fn nul_list(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// Counts what passes through, and stops past the cap.
struct Capped<R> {
    inner: R,
    read: u64,
    cap: u64,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.cap {
            return Err(std::io::Error::other(format!(
                "git archive wrote more than {} bytes",
                self.cap
            )));
        }
        Ok(n)
    }
}

/// Unpacks what `archive` (`git archive --format=tar`) writes into `to`, streamed (never held
/// whole in memory) and capped. Links are made last, once every file is there, so that no
/// entry is written through one; a link that resolves outside `to` is then removed.
fn export(
    mut archive: std::process::Command,
    to: &Path,
    source: &GitSource,
    caps: Caps,
) -> Result<(), ExportError> {
    let mut child = archive
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ExportError::Git(Box::new(GitError::Spawn(e))))?;
    // The tar stream's headers and padding count too: a little more than the files.
    let cap = caps.bytes + caps.entries * 1536 + 1024 * 1024;
    let unpacked = child
        .stdout
        .take()
        .ok_or_else(|| ExportError::Io(std::io::Error::other("git archive has no output")))
        .and_then(|out| {
            let stream = Capped {
                inner: out,
                read: 0,
                cap,
            };
            unpack(stream, to, caps)
        });
    if unpacked.is_err() {
        let _ = child.kill();
    }
    let done = child.wait_with_output()?;
    unpacked?;
    if done.status.success() {
        Ok(())
    } else {
        Err(ExportError::Git(Box::new(
            source.failed(&["archive"], &done.stderr),
        )))
    }
}

/// Unpacks a tar stream into `to`; see [`export`].
fn unpack(stream: impl std::io::Read, to: &Path, caps: Caps) -> Result<(), ExportError> {
    let mut archive = tar::Archive::new(stream);
    let mut links = Vec::new();
    let mut entries = 0u64;
    let mut bytes = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        entries += 1;
        bytes = bytes.saturating_add(entry.header().size().unwrap_or(0));
        if entries > caps.entries {
            return Err(ExportError::TooManyEntries(caps.entries));
        }
        if bytes > caps.bytes {
            return Err(ExportError::TooManyBytes(caps.bytes));
        }
        match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                let path = entry.path()?.into_owned();
                let target = entry
                    .link_name()?
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or_default();
                links.push((path, target));
            }
            tar::EntryType::Regular | tar::EntryType::Directory => {
                // The tar crate refuses `..` and absolute paths, and (no link exists yet)
                // writes nothing through one.
                entry.unpack_in(to)?;
            }
            // Git writes a pax global header (the commit id); nothing else is a file.
            _ => {}
        }
    }
    for (path, target) in links {
        let at = crate::manifest::trust::lexical(&to.join(&path));
        if !at.starts_with(to) {
            continue;
        }
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(&target, &at)?;
    }
    Ok(())
}

/// Checks that `dir` holds exactly the files and links of `listed` (the commit's listing)
/// but those `known` to have been left out: a run that stopped midway, or another that wrote
/// the same folder, must not leave an export missing a file, which would still validate and
/// delete that file's function. Links that resolve outside `dir` are removed first; they are
/// returned.
fn complete(dir: &Path, listed: &[String], known: &[String]) -> Result<Vec<String>, ExportError> {
    let root = std::fs::canonicalize(dir).map_err(|e| shown(dir, e))?;
    let mut found = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| shown(&d, e))? {
            let e = e?;
            let path = e.path();
            let kind = e.file_type()?;
            let rel = path
                .strip_prefix(&root)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .into_owned();
            if kind.is_dir() {
                todo.push(path);
                continue;
            }
            // Resolved as anything read through it would be (links chained through links,
            // `..` after a link), every one before any is removed.
            if kind.is_symlink()
                && std::fs::canonicalize(&path).is_ok_and(|r| !r.starts_with(&root))
            {
                out.push((rel, path));
                continue;
            }
            found.insert(rel);
        }
    }
    let mut left_out = Vec::new();
    for (rel, path) in out {
        std::fs::remove_file(&path).map_err(|e| shown(&path, e))?;
        left_out.push(rel);
    }
    let want: std::collections::BTreeSet<String> = listed
        .iter()
        .filter(|p| !left_out.contains(p) && !known.contains(p))
        .cloned()
        .collect();
    if let Some(missing) = want.difference(&found).next() {
        return Err(ExportError::Missing(missing.clone()));
    }
    if let Some(extra) = found.difference(&want).next() {
        return Err(ExportError::Extra(extra.clone()));
    }
    left_out.sort();
    Ok(left_out)
}

/// `e`, saying which `path` it met.
fn shown(path: &Path, e: std::io::Error) -> ExportError {
    ExportError::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// A commit id as scar shows it: its first 12 hex digits (what `git show` takes).
#[must_use]
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// `url` with any password or token (the user-information part) replaced by `***`.
#[must_use]
pub fn redact(url: &str) -> String {
    match crate::text::url_parts(url) {
        Some((scheme, Some(_), host, rest)) => format!("{scheme}***@{host}{rest}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_url_never_show() {
        assert_eq!(
            redact("https://user:tok3n@git.example.org/infra.git"),
            "https://***@git.example.org/infra.git"
        );
        assert_eq!(
            redact("https://git.example.org/a@b"),
            "https://git.example.org/a@b"
        );
        assert_eq!(redact("/srv/infra.git"), "/srv/infra.git");
    }

    #[test]
    fn option_like_urls_and_branches_are_refused() {
        let cache = Path::new("/tmp");
        assert!(GitSource::new("--upload-pack=touch /tmp/x", "main", cache).is_err());
        assert!(
            GitSource::new(
                "https://x/y.git\"\n[core]\n\tsshCommand = touch /tmp/x",
                "main",
                cache
            )
            .is_err()
        );
        assert!(GitSource::new("https://x/y.git", "-b", cache).is_err());
        assert!(GitSource::new("https://x/y.git", "a..b", cache).is_err());
        assert!(GitSource::new("https://x/y.git", "release/1.2", cache).is_ok());
    }

    fn git_in(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A remote holding `files` functions' manifests, committed.
    fn remote(files: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("remote");
        for i in 0..files {
            std::fs::write(dir.path().join(format!("f{i}.yaml")), format!("n: {i}\n"))
                .expect("write");
        }
        git_in(dir.path(), &["init", "--quiet", "-b", "main"]);
        git_in(dir.path(), &["add", "."]);
        git_in(dir.path(), &["commit", "--quiet", "-m", "c"]);
        dir
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.flatten().count())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_watchers_of_one_repository_never_share_a_half_written_export() {
        // Regression (issue 23, finding 3): both wrote `trees/.<commit>.partial`; in 4 of 12
        // trials one renamed the other's half-written folder into place, and the export that
        // was then used (and validated) missed a file. Here: 12 trials of two at once.
        let r = remote(40);
        let url = r.path().display().to_string();
        for trial in 0..12 {
            let cache = tempfile::tempdir().expect("cache");
            let a = GitSource::new(&url, "main", cache.path()).expect("source");
            let b = a.clone();
            let commit = a.fetch().await.expect("fetched");
            let (ta, tb) = (commit.clone(), commit.clone());
            let first = tokio::spawn(async move {
                let e = a.tree(&ta).await.expect("exported");
                files_in(&e.dir)
            });
            let second = tokio::spawn(async move {
                let e = b.tree(&tb).await.expect("exported");
                files_in(&e.dir)
            });
            let (x, y) = (first.await.expect("a"), second.await.expect("b"));
            assert_eq!((x, y), (40, 40), "trial {trial}");
        }
    }

    #[tokio::test]
    async fn an_export_that_lost_a_file_is_made_again_not_used() {
        let r = remote(3);
        let cache = tempfile::tempdir().expect("cache");
        let s =
            GitSource::new(&r.path().display().to_string(), "main", cache.path()).expect("source");
        let commit = s.fetch().await.expect("fetched");
        let dir = s.tree(&commit).await.expect("exported").dir;
        std::fs::remove_file(dir.join("f1.yaml")).expect("lose a file");
        std::fs::write(dir.join("planted.yaml"), "x: 1\n").expect("plant one");
        let again = s.tree(&commit).await.expect("again");
        assert!(again.dir.join("f1.yaml").is_file());
        assert!(!again.dir.join("planted.yaml").exists());
    }

    #[test]
    fn a_commit_over_the_caps_is_refused_not_unpacked() {
        // Regression (issue 23, finding 9): the export was held whole in memory, uncapped.
        let mut tar = tar::Builder::new(Vec::new());
        for i in 0..5 {
            let mut h = tar::Header::new_gnu();
            h.set_size(4);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, format!("f{i}"), &b"data"[..])
                .expect("entry");
        }
        let tar = tar.into_inner().expect("tar");
        let to = tempfile::tempdir().expect("to");
        let entries = unpack(
            &tar[..],
            to.path(),
            Caps {
                bytes: 1 << 20,
                entries: 4,
            },
        );
        assert!(entries.is_err_and(|e| e.to_string().contains("more than 4 files")));
        let bytes = unpack(
            &tar[..],
            to.path(),
            Caps {
                bytes: 12,
                entries: 100,
            },
        );
        assert!(bytes.is_err_and(|e| e.to_string().contains("more than 12 bytes")));
        let fine = unpack(
            &tar[..],
            to.path(),
            Caps {
                bytes: 20,
                entries: 5,
            },
        );
        assert!(fine.is_ok(), "{fine:?}");
    }
}
