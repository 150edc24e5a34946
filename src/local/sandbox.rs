//! The unprivileged sandbox a function runs in here: new user, mount, PID, IPC and UTS
//! namespaces (no root needed, no daemon), the image's root file system read-only as `/`, a
//! fresh `/proc`, a minimal `/dev`, a writable `/tmp` of the function's ephemeral storage size,
//! and nothing of the host's environment but what is set. The network is the host's: the
//! Runtime API scar serves and the stack's endpoints are on it.
//!
//! bubblewrap (`bwrap`) does it when installed; otherwise util-linux's `unshare`, with the
//! host's `sh` and `mount` setting up the mounts before it enters the root. Killing the
//! sandbox's first process ends every process in it (the PID namespace goes with it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The user id a function runs as, as in Lambda (`sbx_user1051`).
pub const LAMBDA_UID: u32 = 993;
/// Its group id.
pub const LAMBDA_GID: u32 = 990;

/// The program that makes the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    /// bubblewrap.
    Bwrap(PathBuf),
    /// util-linux's `unshare`.
    Unshare(PathBuf),
}

impl Tool {
    /// `bwrap` when it is on `PATH`, else `unshare`; `SCAR_SANDBOX=bwrap|unshare` picks one.
    ///
    /// # Errors
    /// When neither is installed, naming the packages that provide them.
    pub fn find() -> Result<Tool, String> {
        let want = std::env::var("SCAR_SANDBOX").ok();
        let bwrap = || which("bwrap").map(Tool::Bwrap);
        let unshare = || which("unshare").map(Tool::Unshare);
        let found = match want.as_deref() {
            Some("bwrap") => bwrap(),
            Some("unshare") => unshare(),
            Some(other) => {
                return Err(format!(
                    "SCAR_SANDBOX is `{other}`; it takes `bwrap` or `unshare`"
                ));
            }
            None => bwrap().or_else(unshare),
        };
        found.ok_or_else(|| {
            "running a function here needs bubblewrap (`bwrap`, Debian and Ubuntu package `bubblewrap`) or util-linux's `unshare` on PATH".to_owned()
        })
    }

    /// Checks that the tool can make the sandbox's namespaces on this machine.
    ///
    /// # Errors
    /// What is missing, and how to allow it, when it cannot.
    pub async fn probe(&self) -> Result<(), String> {
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
            Tool::Unshare(p) => (
                p,
                &[
                    "--user",
                    "--map-root-user",
                    "--mount",
                    "--pid",
                    "--fork",
                    "--",
                    "/bin/true",
                ],
            ),
        };
        let out = tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("{}: {e}", program.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(format!(
            "this machine cannot make the sandbox a function runs in here ({} said: {said}): {}",
            self.name(),
            namespaces_missing()
        ))
    }

    /// The program's name, for messages.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Tool::Bwrap(_) => "bwrap",
            Tool::Unshare(_) => "unshare",
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
pub fn prepare_root(root: &Path) -> Result<(), String> {
    for dir in ["proc", "dev", "tmp", "etc"] {
        let path = crate::image::rootfs::resolve_in(root, dir)?;
        if !path.exists() {
            std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let resolv = crate::image::rootfs::resolve_in(root, "etc/resolv.conf")?;
    if std::fs::symlink_metadata(&resolv).is_err() {
        let made = resolv
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&resolv, ""));
        made.map_err(|e| format!("{}: {e}", resolv.display()))?;
    }
    Ok(())
}

impl Sandbox {
    /// The command that runs it with `tool`. The function's environment (credentials among
    /// it) never appears on a command line, which every user of the host can read in
    /// `/proc/PID/cmdline`: it is written to an unlinked file only this user can read, given to
    /// the sandbox as its standard input, which bubblewrap reads its arguments from
    /// (`--args 0`) and `xargs` hands to `env -i` just before the program starts. The program
    /// then finds standard input at its end, as a Lambda function does.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn command(&self, tool: &Tool) -> std::io::Result<tokio::process::Command> {
        let (program, args, stdin) = match tool {
            Tool::Bwrap(p) => (p, self.bwrap_args(), self.bwrap_stdin()),
            Tool::Unshare(p) => (p, self.unshare_args(), self.unshare_stdin(p)),
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

    /// NUL-separated items.
    fn nul_separated<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for i in items {
            out.extend_from_slice(i);
            out.push(0);
        }
        out
    }

    /// bubblewrap's arguments read from standard input: the environment.
    fn bwrap_stdin(&self) -> Vec<u8> {
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

    /// What `xargs -0 env -i` reads: the environment, then `unshare --root` (no new
    /// namespaces), which enters the root and runs the program.
    fn unshare_stdin(&self, unshare: &Path) -> Vec<u8> {
        let env = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes());
        let enter = [
            unshare.as_os_str().as_encoded_bytes().to_vec(),
            format!("--root={}", self.root.display()).into_bytes(),
            format!("--wd={}", self.cwd).into_bytes(),
            b"--".to_vec(),
        ];
        let argv = self.argv.iter().map(|a| a.clone().into_bytes());
        let items: Vec<Vec<u8>> = env.chain(enter).chain(argv).collect();
        Self::nul_separated(items.iter().map(Vec::as_slice))
    }

    /// `unshare` makes the namespaces and runs the host's `sh`, which mounts the root
    /// read-only, `/proc`, `/dev` (the host's null, zero, random and urandom), `/tmp` and the
    /// DNS settings; the host's `xargs` then runs `env -i` with the environment, which runs
    /// `unshare --root` (see [`Sandbox::unshare_stdin`]). The program runs as root of its user
    /// namespace (bubblewrap's, as Lambda's user, 993).
    fn unshare_args(&self) -> Vec<OsString> {
        const SCRIPT: &str = r#"set -e
root=$1; tmp_mb=$2
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=64k tmpfs "$root/dev"
for d in null zero random urandom; do
  : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"
done
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o "mode=1777,size=${tmp_mb}m" tmpfs "$root/tmp"
[ -e /etc/resolv.conf ] && mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
mount -o remount,bind,ro "$root"
exec xargs -0 -x env -i
"#;
        let mut a: Vec<OsString> = [
            "--user",
            "--map-root-user",
            "--mount",
            "--pid",
            "--ipc",
            "--uts",
            "--fork",
            "--kill-child",
            "--",
            "/bin/sh",
            "-c",
            SCRIPT,
            "sh",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        a.push(self.root.clone().into_os_string());
        a.push(self.tmp_mb.to_string().into());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root made of the host's busybox: `/bin/busybox` and its applets.
    fn busybox_root() -> Option<tempfile::TempDir> {
        let busybox = Path::new("/bin/busybox");
        if !busybox.is_file() || which("bwrap").is_none() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        std::fs::copy(busybox, bin.join("busybox")).expect("copy");
        for applet in [
            "sh", "cat", "echo", "ls", "touch", "env", "sort", "cut", "tr", "sleep",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("link");
        }
        prepare_root(dir.path()).expect("mount points");
        Some(dir)
    }

    async fn run(tool: &Tool, root: &Path, script: &str) -> (i32, String, String) {
        let sb = Sandbox {
            root: root.to_owned(),
            tmp_mb: 16,
            env: vec![
                ("GREETING".into(), "hi".into()),
                ("PATH".into(), "/bin".into()),
            ],
            cwd: "/tmp".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        };
        let out = sb
            .command(tool)
            .expect("command")
            .output()
            .await
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Every host process's command line holding `needle`.
    fn command_lines_with(needle: &str) -> Vec<String> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(needle))
            .collect()
    }

    #[tokio::test]
    async fn the_environment_is_on_no_command_line_the_host_can_read() {
        let Some(root) = busybox_root() else {
            assert!(std::env::var_os("CI").is_none(), "needs busybox and bwrap");
            return;
        };
        let secret = format!("not-on-a-command-line-{}", std::process::id());
        for tool in [
            which("bwrap").map(Tool::Bwrap),
            which("unshare").map(Tool::Unshare),
        ]
        .iter()
        .flatten()
        {
            let sb = Sandbox {
                root: root.path().to_owned(),
                tmp_mb: 16,
                env: vec![
                    ("SECRET".into(), secret.clone()),
                    ("PATH".into(), "/bin".into()),
                ],
                cwd: "/".into(),
                argv: vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo \"$SECRET\"; exec sleep 30".into(),
                ],
            };
            let mut child = sb
                .command(tool)
                .expect("command")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("starts");
            let mut out = child.stdout.take().expect("stdout");
            let mut first = [0u8; 8];
            tokio::io::AsyncReadExt::read_exact(&mut out, &mut first)
                .await
                .expect("the program started");
            assert_eq!(&first, b"not-on-a", "{}", tool.name());
            let seen = command_lines_with(&secret);
            // The scan sees the sandbox's processes.
            let running = command_lines_with("sleep 30");
            let _ = child.kill().await;
            assert!(seen.is_empty(), "{}: {seen:?}", tool.name());
            assert!(!running.is_empty(), "{}", tool.name());
        }
    }

    #[tokio::test]
    async fn both_sandboxes_give_a_read_only_root_a_private_tmp_and_only_the_environment_set() {
        let Some(root) = busybox_root() else {
            // test.sh installs both; CI must not pass this by skipping it.
            assert!(
                std::env::var_os("CI").is_none(),
                "needs /bin/busybox (busybox-static) and bwrap"
            );
            eprintln!(
                "skipped: needs /bin/busybox (busybox-static) and bwrap, which test.sh installs"
            );
            return;
        };
        let tools = [
            which("bwrap").map(Tool::Bwrap),
            which("unshare").map(Tool::Unshare),
        ];
        for tool in tools.iter().flatten() {
            let (code, out, err) = run(
                tool,
                root.path(),
                "echo $GREETING; env | sort | cut -d= -f1 | tr '\\n' ' '; echo; pwd; \
                 touch /tmp/ok && echo tmp-writable; touch /bin/x 2>/dev/null || echo root-read-only; \
                 ls /proc/1/exe >/dev/null && echo proc; cat /dev/null && echo dev",
            )
            .await;
            assert_eq!(code, 0, "{}: {err}", tool.name());
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines[0], "hi", "{}: {out}", tool.name());
            assert!(
                !lines[1].contains("HOME") && lines[1].contains("GREETING"),
                "{}: {out}",
                tool.name()
            );
            assert_eq!(
                &lines[2..],
                ["/tmp", "tmp-writable", "root-read-only", "proc", "dev"],
                "{}",
                tool.name()
            );
            assert!(
                !root.path().join("tmp/ok").exists(),
                "{}: /tmp is the sandbox's",
                tool.name()
            );
        }
    }
}
