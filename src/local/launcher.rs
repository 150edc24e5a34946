//! scar's own sandbox launcher, for machines without bubblewrap: the same sandbox, made with
//! nothing of the host running inside it.
//!
//! It is the `scar` binary itself, started twice (`scar __sandbox`, then `__sandbox --init`),
//! each a fresh single-threaded process, as the kernel requires to make a user namespace:
//!
//! 1. **outside**: new user, mount, PID, IPC, UTS (and cgroup, where allowed) namespaces, the
//!    caller mapped to root of the new user namespace; starts step 2 and waits for it. It is
//!    not in the new PID namespace, so nothing inside can see it.
//! 2. **init** (PID 1 of the new PID namespace): reads what to run (JSON on standard input:
//!    the root, `/tmp`'s size, the working directory, the environment and the program), mounts
//!    `/proc`, a read-only `/dev` (null, zero, random, urandom and the fd links), `/tmp` and
//!    the DNS settings into the root, **pivots into the root and unmounts the old one** (so
//!    `/proc/1/root`, `/proc/*/root` and every path lead only into the image), remounts the
//!    root read-only, then moves into a second user namespace in which it is Lambda's user
//!    (993, not root: no capability survives `exec`), drops its own capabilities, forbids new
//!    privileges and core dumps of itself, starts the program and reaps every process until
//!    the program ends, with its exit status.
//!
//! The mounts belong to the first user namespace, of which the program holds no capability:
//! it cannot unmount, remount the root read-write (nor from a user namespace of its own: the
//! kernel locks a read-only mount copied into a less privileged one), or reach the host's file
//! system. Killing step 1 kills step 2 (a parent-death signal), and the PID namespace with it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;
use serde::{Deserialize, Serialize};

/// The hidden subcommand that starts the launcher.
pub const SUBCOMMAND: &str = "__sandbox";

/// The exit status the launcher ends with when it cannot make the sandbox (Docker's and
/// runc's: the container could not be started).
const FAILED: u8 = 125;

/// What the sandbox runs, as the launcher reads it on its standard input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The root file system (a folder on the host).
    pub root: PathBuf,
    /// `/tmp`'s size in MB.
    pub tmp_mb: u32,
    /// The working directory, inside the root.
    pub cwd: String,
    /// The whole environment of the program.
    pub env: Vec<(String, String)>,
    /// The program (a path inside the root) and its arguments.
    pub argv: Vec<String>,
    /// The user and group the program runs as.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
}

/// The most standard input may hold (the environment is at most Lambda's 4 KB, the program's
/// arguments a few paths).
const MAX_SPEC: u64 = 1024 * 1024;

/// Which step this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Step 1: makes the namespaces, starts step 2, waits.
    Outside,
    /// Step 2: PID 1 inside.
    Init,
    /// Makes the namespaces and ends: can this machine make the sandbox?
    Probe,
}

/// Runs `step`; the process's exit status.
#[must_use]
pub fn run(step: Step) -> ExitCode {
    let ran = match step {
        Step::Outside => outside(false),
        Step::Probe => outside(true),
        Step::Init => init(),
    };
    match ran {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("scar sandbox: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// A step of the sandbox that failed: what it was doing, and what the kernel said.
#[derive(Debug, thiserror::Error)]
enum LaunchError {
    /// A call failed.
    #[error("{what}: {source}")]
    Failed {
        /// What the step was doing.
        what: String,
        /// What it met.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The spec names no program.
    #[error("nothing to run")]
    NothingToRun,
}

/// `what: error`, for the `?`s below.
fn ctx<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> LaunchError {
    move |e| LaunchError::Failed {
        what: what.into(),
        source: Box::new(e),
    }
}

/// Step 1.
fn outside(probe: bool) -> Result<u8, LaunchError> {
    // Ends with the scar that started it.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(ctx("the parent-death signal"))?;
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    let flags = UnshareFlags::NEWUSER
        | UnshareFlags::NEWNS
        | UnshareFlags::NEWPID
        | UnshareFlags::NEWIPC
        | UnshareFlags::NEWUTS;
    // A cgroup namespace where the kernel allows one (bubblewrap's --unshare-cgroup-try).
    unshare(flags | UnshareFlags::NEWCGROUP)
        .or_else(|_| unshare(flags))
        .map_err(ctx("making the namespaces (unshare)"))?;
    map_ids(0, uid, 0, gid)?;
    if probe {
        return Ok(0);
    }
    // Step 2 is this program again: the first process started now is PID 1 inside.
    let status = std::process::Command::new("/proc/self/exe")
        .args([SUBCOMMAND, "--init"])
        .env_clear()
        .status()
        .map_err(ctx("starting the sandbox's first process"))?;
    Ok(code_of(status))
}

/// The exit status of a process that ended, as a shell reports it (128 + a signal's number).
fn code_of(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    shell_code(status.code(), status.signal())
}

/// A process's exit `code`, or 128 + the `signal` that ended it.
fn shell_code(code: Option<i32>, signal: Option<i32>) -> u8 {
    match (code, signal) {
        (Some(c), _) => u8::try_from(c).unwrap_or(FAILED),
        (None, Some(s)) => u8::try_from(128 + s).unwrap_or(FAILED),
        (None, None) => FAILED,
    }
}

/// `unshare(2)`. rustix marks it deprecated because unsharing the file table (`CLONE_FILES`)
/// would break other threads' descriptors; the launcher unshares namespaces only, and is one
/// thread.
#[expect(
    deprecated,
    reason = "rustix deprecates the safe unshare for CLONE_FILES, which is never passed here"
)]
fn unshare(flags: UnshareFlags) -> rustix::io::Result<()> {
    debug_assert!(!flags.contains(UnshareFlags::FILES));
    rustix::thread::unshare(flags)
}

/// Maps `inside_uid` of the user namespace just made to `outside_uid` of its parent (and the
/// same for groups), the one mapping an unprivileged process may write.
fn map_ids(
    inside_uid: u32,
    outside_uid: u32,
    inside_gid: u32,
    outside_gid: u32,
) -> Result<(), LaunchError> {
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(ctx(format!("writing {file}")))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write(
        "/proc/self/uid_map",
        format!("{inside_uid} {outside_uid} 1\n"),
    )?;
    write(
        "/proc/self/gid_map",
        format!("{inside_gid} {outside_gid} 1\n"),
    )
}

/// Step 2: PID 1.
fn init() -> Result<u8, LaunchError> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(ctx("the parent-death signal"))?;
    let mut text = Vec::new();
    std::io::stdin()
        .take(MAX_SPEC)
        .read_to_end(&mut text)
        .map_err(ctx("reading what to run"))?;
    let spec: Spec = serde_json::from_slice(&text).map_err(ctx("reading what to run"))?;
    drop(text);
    enter_root(&spec)?;
    become_user(&spec)?;
    let program = spec.argv.first().ok_or(LaunchError::NothingToRun)?;
    let child = std::process::Command::new(program)
        .args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        // The program finds standard input at its end, as a Lambda function does (what this
        // process read there stays here).
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(ctx(format!("starting {program}")))?;
    reap(child.id())
}

/// Mounts what the sandbox holds into the root, pivots into it, drops the host's file system
/// and makes the root read-only.
fn enter_root(spec: &Spec) -> Result<(), LaunchError> {
    let root = &spec.root;
    let at = |p: &str| root.join(p);
    let mount_err = |what: &str, path: &Path| ctx(format!("mounting {what} on {}", path.display()));
    // Nothing mounted here reaches the host's mount table, nor the other way.
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(ctx("making the mounts private"))?;
    // The root must be a mount point to pivot into.
    rustix::mount::mount_bind(root, root).map_err(mount_err("the root", root))?;
    let proc = at("proc");
    rustix::mount::mount(
        "proc",
        &proc,
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(mount_err("proc", &proc))?;
    make_dev(&at("dev"))?;
    let tmp = at("tmp");
    let options = std::ffi::CString::new(format!("mode=1777,size={}m", spec.tmp_mb))
        .map_err(ctx("/tmp's options"))?;
    rustix::mount::mount(
        "tmpfs",
        &tmp,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(options.as_c_str()),
    )
    .map_err(mount_err("/tmp", &tmp))?;
    let resolv = at("etc/resolv.conf");
    if Path::new("/etc/resolv.conf").is_file() && resolv.is_file() {
        rustix::mount::mount_bind("/etc/resolv.conf", &resolv)
            .map_err(mount_err("the DNS settings", &resolv))?;
        read_only(&resolv, MountFlags::BIND)?;
    }
    // Into the root; the old one is stacked on it by pivot_root(".", ".") and unmounted, so no
    // path, and no process's `/proc/PID/root`, leads out.
    rustix::process::chdir(root).map_err(ctx("entering the root"))?;
    rustix::process::pivot_root(".", ".").map_err(ctx("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(ctx("unmounting the host's root"))?;
    rustix::process::chdir("/").map_err(ctx("entering the root"))?;
    read_only(Path::new("/"), MountFlags::BIND)?;
    rustix::system::sethostname(b"localhost").map_err(ctx("the host name"))?;
    Ok(())
}

/// A `/dev` of its own: a small tmpfs holding the host's null, zero, random and urandom (bound)
/// and the fd links, then made read-only.
fn make_dev(dev: &Path) -> Result<(), LaunchError> {
    let options = c"mode=0755,size=64k";
    rustix::mount::mount(
        "tmpfs",
        dev,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(options),
    )
    .map_err(ctx(format!("mounting /dev on {}", dev.display())))?;
    for d in ["null", "zero", "random", "urandom"] {
        let node = dev.join(d);
        std::fs::write(&node, b"").map_err(ctx(node.display().to_string()))?;
        rustix::mount::mount_bind(Path::new("/dev").join(d), &node)
            .map_err(ctx(format!("binding /dev/{d}")))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).map_err(ctx(format!("/dev/{link}")))?;
    }
    read_only(dev, MountFlags::empty())
}

/// Remounts the mount at `path` read-only, keeping the flags it has (a mount inside a user
/// namespace may not drop `nosuid`, `nodev`, `noexec` or its access-time rule).
fn read_only(path: &Path, bind: MountFlags) -> Result<(), LaunchError> {
    use rustix::fs::StatVfsMountFlags as S;
    let have = rustix::fs::statvfs(path)
        .map_err(ctx(format!("reading the mount at {}", path.display())))?
        .f_flag;
    let mut flags = bind | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
    for (has, keep) in [
        (S::NOEXEC, MountFlags::NOEXEC),
        (S::NOATIME, MountFlags::NOATIME),
        (S::NODIRATIME, MountFlags::NODIRATIME),
        (S::RELATIME, MountFlags::RELATIME),
    ] {
        if have.contains(has) {
            flags |= keep;
        }
    }
    rustix::mount::mount_remount(path, flags, "")
        .map_err(ctx(format!("making {} read-only", path.display())))
}

/// Moves into a user namespace of its own in which this process is `spec.uid` (Lambda's
/// user), not root; drops every capability, forbids gaining any (no_new_privs) and core
/// dumps (nothing may read this process's memory).
fn become_user(spec: &Spec) -> Result<(), LaunchError> {
    unshare(UnshareFlags::NEWUSER).map_err(ctx("the function's user namespace"))?;
    map_ids(spec.uid, 0, spec.gid, 0)?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(ctx("forbidding core dumps"))?;
    rustix::thread::set_no_new_privs(true).map_err(ctx("no_new_privs"))?;
    let none = rustix::thread::CapabilitySet::empty();
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: none,
            permitted: none,
            inheritable: none,
        },
    )
    .map_err(ctx("dropping capabilities"))
}

/// As PID 1: reaps every process that ends (orphans come to PID 1) until `program` does; its
/// exit status.
fn reap(program: u32) -> Result<u8, LaunchError> {
    loop {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get().unsigned_abs() == program => {
                return Ok(shell_code(
                    status.exit_status(),
                    status.terminating_signal(),
                ));
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(ctx("waiting for the program")(e)),
        }
    }
}
