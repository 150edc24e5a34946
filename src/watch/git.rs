//! Following a Git remote, as Flux and Argo CD do: scar keeps its own bare mirror of one
//! branch, fetches it, and applies the tree of the commit the branch points at, exported
//! from Git's objects. A worktree someone edits is never read, so an uncommitted change
//! cannot reach AWS; the commit applied is reported.
//!
//! Runs the `git` program (`GIT_TERMINAL_PROMPT=0`, stdin closed, the `ext::` transport
//! refused); the repository's own credentials setup (a credential helper, SSH keys) applies.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// How many exported trees are kept (the current one and the one before).
const TREES_KEPT: usize = 2;

/// One branch of one remote, mirrored under a cache directory.
#[derive(Debug, Clone)]
pub struct GitSource {
    url: String,
    branch: String,
    mirror: PathBuf,
    trees: PathBuf,
}

impl GitSource {
    /// The source for `branch` of `url`, kept under `cache`.
    ///
    /// # Errors
    /// A URL or branch that could be read as an option, or a branch name Git refuses.
    pub fn new(url: &str, branch: &str, cache: &Path) -> Result<GitSource, String> {
        // Control characters could write more than the URL into the mirror's config.
        if url.starts_with('-') || url.trim().is_empty() || url.chars().any(char::is_control) {
            return Err(format!("--git `{url}` is not a repository URL"));
        }
        let refused = branch.starts_with('-')
            || branch.is_empty()
            || branch.contains("..")
            || branch
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
        if refused {
            return Err(format!("--branch `{branch}` is not a branch name"));
        }
        let key = crate::model::short_hash(&format!("{url}#{branch}"));
        let root = cache.join("git").join(key);
        Ok(GitSource {
            url: url.to_owned(),
            branch: branch.to_owned(),
            mirror: root.join("mirror.git"),
            trees: root.join("trees"),
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

    /// Runs git on the mirror; its output.
    async fn raw(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = Command::new("git")
            .arg("-c")
            .arg("protocol.ext.allow=never")
            .arg("--git-dir")
            .arg(&self.mirror)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("running git: {e} (is git installed?)"))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!(
                "git {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace(&self.url, &redact(&self.url))
            ))
        }
    }

    /// Runs git on the mirror; its output as trimmed text.
    async fn git(&self, args: &[&str]) -> Result<String, String> {
        let out = self.raw(args).await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Fetches the branch; the commit it points at now.
    ///
    /// # Errors
    /// Git's message when the mirror cannot be made or the fetch fails.
    pub async fn fetch(&self) -> Result<String, String> {
        if !self.mirror.join("HEAD").is_file() {
            std::fs::create_dir_all(&self.mirror)
                .map_err(|e| format!("{}: {e}", self.mirror.display()))?;
            self.git(&["init", "--quiet", "--bare"]).await?;
            self.write_remote()?;
        }
        let refspec = format!("+refs/heads/{0}:refs/heads/{0}", self.branch);
        // The URL (which may carry a token) is in the mirror's config, not on a command line
        // every user of the machine can read.
        self.git(&["fetch", "--quiet", "--no-tags", "origin", &refspec])
            .await?;
        self.head().await
    }

    /// Records the remote in the mirror's config, readable by its owner only.
    fn write_remote(&self) -> Result<(), String> {
        use std::io::Write as _;
        let config = self.mirror.join("config");
        let quoted = self.url.replace('\\', "\\\\").replace('"', "\\\"");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .map_err(|e| format!("{}: {e}", config.display()))?;
        writeln!(f, "[remote \"origin\"]\n\turl = \"{quoted}\"")
            .map_err(|e| format!("{}: {e}", config.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| format!("{}: {e}", config.display()))?;
        }
        Ok(())
    }

    /// The commit the mirrored branch points at (as last fetched).
    ///
    /// # Errors
    /// When the branch was never fetched.
    pub async fn head(&self) -> Result<String, String> {
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{}^{{commit}}", self.branch),
        ])
        .await
    }

    /// The files of `commit`, exported into a folder of their own (once per commit); older
    /// exports are removed but for the last [`TREES_KEPT`].
    ///
    /// # Errors
    /// When Git cannot export the commit or the files cannot be written.
    pub async fn tree(&self, commit: &str) -> Result<PathBuf, String> {
        if !commit.chars().all(|c| c.is_ascii_hexdigit()) || commit.len() < 7 {
            return Err(format!("`{commit}` is not a commit id"));
        }
        let dir = self.trees.join(commit);
        if dir.is_dir() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&self.trees)
            .map_err(|e| format!("{}: {e}", self.trees.display()))?;
        let tar = self.raw(&["archive", "--format=tar", commit]).await?;
        let partial = self.trees.join(format!(".{commit}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        tar::Archive::new(tar.as_slice())
            .unpack(&partial)
            .map_err(|e| format!("exporting {commit}: {e}"))?;
        std::fs::rename(&partial, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        self.prune(commit);
        Ok(dir)
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
            let _ = std::fs::remove_dir_all(path);
        }
    }
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
}
