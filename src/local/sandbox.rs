//! The unprivileged sandbox a function runs in here: new user, mount, PID, IPC and UTS
//! namespaces (no root needed, no daemon), the image's root file system read-only as `/`, a
//! fresh `/proc`, a minimal `/dev`, a writable `/tmp` of the function's ephemeral storage size,
//! and nothing of the host's environment but what is set. The function runs as Lambda's user
//! (993) with no capability. The network is the host's: the Runtime API scar serves and the
//! stack's endpoints are on it.
//!
//! bubblewrap (`bwrap`) makes it when installed; otherwise scar's own launcher does
//! ([`super::launcher`]): either way nothing of the host runs inside the sandbox, and the
//! host's file system is unmounted from it. Killing the sandbox's first process ends every
//! process in it (the PID namespace goes with it).

use super::LocalError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::launcher;

/// The user id a function runs as, as in Lambda (`sbx_user1051`).
pub const LAMBDA_UID: u32 = 993;
/// Its group id.
pub const LAMBDA_GID: u32 = 990;

/// The program that makes the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// bubblewrap.
    Bwrap(PathBuf),
    /// scar's own launcher: this program (a `scar` binary) run as `scar __sandbox`.
    Builtin(PathBuf),
}

impl Tool {
    /// `bwrap` when it is on `PATH`, else scar's own launcher (this process's own binary);
    /// `SCAR_SANDBOX=bwrap|builtin` picks one (`unshare`, which named util-linux's tool
    /// before scar had its own launcher, picks `builtin`).
    ///
    /// # Errors
    /// When bubblewrap is asked for and not installed, or the variable says something else.
    pub fn find() -> Result<Tool, LocalError> {
        Tool::find_with(Path::new("/proc/self/exe"))
    }

    /// [`Tool::find`], with `scar` the binary that runs the built-in launcher.
    ///
    /// # Errors
    /// As [`Tool::find`].
    pub fn find_with(scar: &Path) -> Result<Tool, LocalError> {
        let builtin = Tool::Builtin(scar.to_path_buf());
        match std::env::var("SCAR_SANDBOX").ok().as_deref() {
            Some("bwrap") => which("bwrap")
                .map(Tool::Bwrap)
                .ok_or(LocalError::NoBubblewrap),
            Some("builtin" | "unshare") => Ok(builtin),
            Some(other) => Err(LocalError::SandboxVariable(other.to_owned())),
            None => Ok(which("bwrap").map_or(builtin, Tool::Bwrap)),
        }
    }

    /// Checks that the tool can make the sandbox's namespaces on this machine.
    ///
    /// # Errors
    /// What is missing, and how to allow it, when it cannot.
    pub async fn probe(&self) -> Result<(), LocalError> {
        let (program, args): (&Path, &[&str]) = match self {
            Tool::Bwrap(p) => (
                p,
                &[
                    "--unshare-user",
                    "--unshare-pid",
                    "--ro-bind",
                    "/",
                    "/",
                    "--",
                    "/bin/true",
                ],
            ),
            Tool::Builtin(p) => (p, &[launcher::SUBCOMMAND, "--probe"]),
        };
        let out = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(LocalError::file(program))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(LocalError::NoNamespaces {
            tool: self.name(),
            said,
            how: namespaces_missing(),
        })
    }

    /// The program's name, for messages.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Tool::Bwrap(_) => "bwrap",
            Tool::Builtin(_) => "scar's sandbox launcher",
        }
    }
}

/// What keeps unprivileged user namespaces from being made here, as far as the kernel's
/// settings tell.
fn namespaces_missing() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "user namespaces are turned off (sysctl user.max_user_namespaces=0; set it above 0)".into();
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "unprivileged user namespaces are turned off (sysctl kernel.unprivileged_userns_clone=1 turns them on)".into();
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10 and later): install bubblewrap from the distribution, whose AppArmor profile allows it, or set sysctl kernel.apparmor_restrict_unprivileged_userns=0".into();
    }
    "user, mount and PID namespaces are needed; inside a container, run it with --privileged or a seccomp profile that allows unshare(2) and mount(2)".into()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// What runs in the sandbox.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The root file system (see [`prepare_root`]).
    pub root: PathBuf,
    /// `/tmp`'s size in MB.
    pub tmp_mb: u32,
    /// The whole environment of the process.
    pub env: Vec<(String, String)>,
    /// Its working directory, inside the root.
    pub cwd: String,
    /// The program (a path inside the root) and its arguments.
    pub argv: Vec<String>,
}

/// Makes the mount points the sandbox needs in an unpacked root (`/proc`, `/dev`, `/tmp` and
/// `/etc/resolv.conf`, where DNS settings are bound), each resolved inside the root, when the
/// image lacks them.
///
/// # Errors
/// When one cannot be made (a file where a folder must be).
pub fn prepare_root(root: &Path) -> Result<(), LocalError> {
    for dir in ["proc", "dev", "tmp", "etc"] {
        let path = crate::image::rootfs::resolve_in(root, dir).map_err(LocalError::Root)?;
        if !path.exists() {
            std::fs::create_dir_all(&path).map_err(LocalError::file(&path))?;
        }
    }
    let resolv =
        crate::image::rootfs::resolve_in(root, "etc/resolv.conf").map_err(LocalError::Root)?;
    if std::fs::symlink_metadata(&resolv).is_err() {
        let made = resolv
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&resolv, ""));
        made.map_err(LocalError::file(&resolv))?;
    }
    Ok(())
}

impl Sandbox {
    /// The command that runs it with `tool`. The function's environment (credentials among
    /// it) never appears on a command line, which every user of the host can read in
    /// `/proc/PID/cmdline`: it is written to an unlinked file only this user can read, given to
    /// the sandbox as its standard input, which bubblewrap reads its arguments from
    /// (`--args 0`) and scar's launcher what to run from (JSON). The program then finds
    /// standard input at its end, as a Lambda function does.
    ///
    /// # Errors
    /// When a variable's name or value, or an argument, holds a NUL (it would end one argument
    /// and start another, such as bubblewrap's `--cap-add`), or the file cannot be written.
    pub fn command(&self, tool: &Tool) -> std::io::Result<tokio::process::Command> {
        self.check()?;
        let (program, args, stdin) = match tool {
            Tool::Bwrap(p) => (p, self.bwrap_args(), self.bwrap_stdin()?),
            Tool::Builtin(p) => (p, vec![launcher::SUBCOMMAND.into()], self.launcher_stdin()?),
        };
        let mut file = tempfile::tempfile()?;
        {
            use std::io::{Seek, Write};
            file.write_all(&stdin)?;
            file.rewind()?;
        }
        let mut c = tokio::process::Command::new(program);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(std::process::Stdio::from(file))
            .kill_on_drop(true);
        Ok(c)
    }

    /// Refuses a NUL or another control character in a variable's name, and a NUL in a
    /// value, the working directory or an argument: the environment reaches bubblewrap as
    /// NUL-separated arguments. (Validation refuses them in manifests and image
    /// configurations first; this is the writer's own check.)
    fn check(&self) -> std::io::Result<()> {
        let bad = |what: String| Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, what));
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.chars().any(char::is_control) {
                return bad(format!("the environment variable name {k:?} cannot be set"));
            }
            if v.contains('\0') {
                return bad(format!("the value of {k} holds a NUL character"));
            }
        }
        if self.cwd.contains('\0') || self.argv.iter().any(|a| a.contains('\0')) {
            return bad(
                "the program, its arguments or its working directory hold a NUL character".into(),
            );
        }
        Ok(())
    }

    /// NUL-separated items, none of which may hold a NUL itself.
    fn nul_separated<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for i in items {
            if i.contains(&0) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an argument holds a NUL character",
                ));
            }
            out.extend_from_slice(i);
            out.push(0);
        }
        Ok(out)
    }

    /// bubblewrap's arguments read from standard input: the environment.
    fn bwrap_stdin(&self) -> std::io::Result<Vec<u8>> {
        Self::nul_separated(
            self.env
                .iter()
                .flat_map(|(k, v)| [b"--setenv".as_slice(), k.as_bytes(), v.as_bytes()]),
        )
    }

    fn bwrap_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(s.into());
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--new-session",
            // The environment, after it is cleared.
            "--clearenv",
            "--args",
            "0",
        ] {
            push(flag);
        }
        push("--uid");
        push(&LAMBDA_UID.to_string());
        push("--gid");
        push(&LAMBDA_GID.to_string());
        push("--hostname");
        push("localhost");
        a.push("--ro-bind".into());
        a.push(self.root.clone().into_os_string());
        for s in [
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--ro-bind-try",
            "/etc/resolv.conf",
            "/etc/resolv.conf",
            "--size",
        ] {
            a.push(s.into());
        }
        a.push((u64::from(self.tmp_mb) * 1024 * 1024).to_string().into());
        a.push("--tmpfs".into());
        a.push("/tmp".into());
        a.push("--chdir".into());
        a.push(self.cwd.clone().into());
        a.push("--".into());
        a.extend(self.argv.iter().map(OsString::from));
        a
    }

    /// What scar's launcher reads: the whole sandbox, as JSON.
    fn launcher_stdin(&self) -> std::io::Result<Vec<u8>> {
        let spec = launcher::Spec {
            root: self.root.clone(),
            tmp_mb: self.tmp_mb,
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            argv: self.argv.clone(),
            uid: LAMBDA_UID,
            gid: LAMBDA_GID,
        };
        serde_json::to_vec(&spec).map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(env: Vec<(String, String)>) -> Sandbox {
        Sandbox {
            root: PathBuf::from("/nonexistent"),
            tmp_mb: 16,
            env,
            cwd: "/".into(),
            argv: vec!["/bin/sh".into()],
        }
    }

    #[test]
    fn a_nul_in_the_environment_cannot_add_sandbox_arguments() {
        // Regression (issue 23, finding 7): a value `x\0--cap-add\0ALL` became three of
        // bubblewrap's arguments read from standard input.
        for (k, v) in [
            ("A", "x\0--cap-add\0ALL"),
            ("A\0--cap-add", "ALL"),
            ("A\nB", "x"),
            ("A=B", "x"),
            ("", "x"),
        ] {
            let sb = sandbox(vec![(k.into(), v.into())]);
            for tool in [
                Tool::Bwrap("/bin/true".into()),
                Tool::Builtin("/bin/true".into()),
            ] {
                let e = sb.command(&tool).expect_err("refused");
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{k:?}");
            }
        }
        assert!(Sandbox::nul_separated([b"a\0b".as_slice()]).is_err());
        // Newlines and tabs in a value are a value's business.
        let fine = sandbox(vec![("A".into(), "line 1\nline 2\t.".into())]);
        assert!(fine.command(&Tool::Bwrap("/bin/true".into())).is_ok());
    }

    #[test]
    fn the_launcher_reads_the_whole_sandbox_as_json_with_lambdas_user() {
        let sb = sandbox(vec![("K".into(), "v".into())]);
        let spec: launcher::Spec =
            serde_json::from_slice(&sb.launcher_stdin().expect("json")).expect("spec");
        assert_eq!((spec.uid, spec.gid), (LAMBDA_UID, LAMBDA_GID));
        assert_eq!(spec.env, [("K".to_owned(), "v".to_owned())]);
        assert_eq!(spec.argv, ["/bin/sh"]);
    }
}
