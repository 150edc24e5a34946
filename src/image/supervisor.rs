//! The supervisor binary scar puts into every image it assembles: where scar finds it with no
//! configuration, and what it checks before using it. A supervisor must be a Linux ELF program
//! of the image's architecture, static (no program interpreter: it starts in alpine, busybox or
//! a 2015 Debian alike, because it takes no C library from the image), and marked with this
//! scar's version (so the plan's `supervisor` field says what the image really gets).
//!
//! Where it is looked for, first found first:
//! 1. `SCAR_SUPERVISOR` (x86_64) or `SCAR_SUPERVISOR_ARM64` (arm64), when set;
//! 2. `scar-supervisor-x86_64` / `scar-supervisor-aarch64` next to the running `scar` (how a
//!    release archive ships them);
//! 3. a Cargo target folder `scar` runs from: `<target>/<arch>-unknown-linux-musl/{debug,
//!    supervisor,release}/scar-supervisor`, the newest (what scripts/build-supervisor.sh makes);
//! 4. `$XDG_DATA_HOME/scar/supervisor/<arch>/bin/scar-supervisor` (default `~/.local/share`),
//!    where `cargo install --root` puts one for a `cargo install` user;
//! 5. `scar-supervisor` next to `scar`, if it passes the checks (a host build usually does not:
//!    it is dynamically linked, and the error says how to get a static one).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Names the supervisor for x86_64 images.
pub const ENV_X86_64: &str = "SCAR_SUPERVISOR";
/// Names the supervisor for arm64 images.
pub const ENV_ARM64: &str = "SCAR_SUPERVISOR_ARM64";

const PT_INTERP: u32 = 3;

/// What finding and checking a supervisor needs to know of an architecture.
struct Arch {
    image: super::Arch,
    oci: &'static str,
    rust: &'static str,
    machine: u16,
    var: &'static str,
}

fn arch(a: super::Arch) -> Arch {
    Arch {
        image: a,
        oci: a.oci(),
        rust: a.rust(),
        machine: match a {
            super::Arch::Amd64 => 0x3e,
            super::Arch::Arm64 => 0xb7,
        },
        var: match a {
            super::Arch::Amd64 => ENV_X86_64,
            super::Arch::Arm64 => ENV_ARM64,
        },
    }
}

/// Where to look, in order, for `a` (before the variable, which [`find`] reads itself).
fn candidates(a: &Arch, exe: &Path, data_home: Option<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Some(dir) = exe.parent() else {
        return out;
    };
    out.push(dir.join(format!("scar-supervisor-{}", a.rust)));
    // target/debug/scar (or target/debug/deps/... for a test) -> target/
    let target = dir
        .ancestors()
        .take(3)
        .find(|d| d.join(".rustc_info.json").exists() || d.join("CACHEDIR.TAG").exists());
    if let Some(t) = target {
        let triple = t.join(format!("{}-unknown-linux-musl", a.rust));
        let mut built: Vec<(std::time::SystemTime, PathBuf)> = ["debug", "supervisor", "release"]
            .iter()
            .map(|p| triple.join(p).join("scar-supervisor"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        built.sort();
        out.extend(built.into_iter().rev().map(|(_, p)| p));
    }
    if let Some(d) = data_home {
        out.push(
            d.join("scar/supervisor")
                .join(a.rust)
                .join("bin/scar-supervisor"),
        );
    }
    out.push(dir.join("scar-supervisor"));
    out
}

fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
}

/// Why there is no supervisor to put into an image.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SupervisorError {
    /// Where scar's own program is could not be found (the supervisors are beside it).
    #[error("finding scar's own folder: {0}")]
    OwnFolder(Arc<std::io::Error>),
    /// No supervisor in any of the places looked at.
    #[error(
        "no supervisor for {oci} images: looked for {looked} (build them with scripts/build-supervisor.sh, install one as docs/runtime.md says, or set {var} to a static scar-supervisor built for linux/{oci})"
    )]
    Missing {
        /// The architecture, as OCI names it.
        oci: &'static str,
        /// The variable that names one.
        var: &'static str,
        /// The places looked at.
        looked: String,
    },
    /// The one found could not be read.
    #[error(
        "no supervisor for {oci} images at {}: {source} (set {var} to a static scar-supervisor built for linux/{oci})",
        path.display()
    )]
    Unreadable {
        /// The architecture, as OCI names it.
        oci: &'static str,
        /// The variable that names one.
        var: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The one found is not one scar can use.
    #[error("{}: {why}", path.display())]
    Unfit {
        /// Where.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        why: Unfit,
    },
}

/// What is wrong with a program offered as the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    /// Not a Linux program for the architecture.
    #[error(
        "not a supervisor for linux/{oci} images: {why}; set {var} to a static scar-supervisor built for linux/{oci}"
    )]
    NotFor {
        /// The architecture, as OCI names it.
        oci: &'static str,
        /// The variable that names one.
        var: &'static str,
        /// Why.
        why: Elf,
    },
    /// Linked against a C library an image may not have.
    #[error(
        "scar-supervisor is dynamically linked (it needs {interp}), so it would not start in images without that C library (alpine, busybox, older Debian and Ubuntu); build the static one with scripts/build-supervisor.sh (target {rust}-unknown-linux-musl)"
    )]
    Dynamic {
        /// The program interpreter it asks for.
        interp: String,
        /// The architecture, as Rust names it.
        rust: &'static str,
    },
    /// Another version's.
    #[error(
        "scar-supervisor {0}, but this scar assembles {version}: rebuild it (scripts/build-supervisor.sh) or install the matching release",
        version = scar_contract::VERSION
    )]
    Version(String),
    /// Not scar's.
    #[error("not a scar-supervisor (it carries no version mark)")]
    Unmarked,
}

/// Why bytes are not a 64-bit Linux program for a machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Elf {
    /// Not an ELF of that class and byte order.
    #[error("not a 64-bit Linux program (ELF)")]
    NotElf,
    /// Its headers point outside it.
    #[error("a damaged ELF header")]
    Damaged,
    /// Built for another machine.
    #[error("built for {0}")]
    Machine(&'static str),
}

/// The supervisor for `architecture`, checked.
///
/// # Errors
/// When there is none, or the one found is not a static Linux program of that architecture
/// carrying this scar's version; the message says where it looked and how to get one.
pub fn find(architecture: super::Arch) -> Result<PathBuf, SupervisorError> {
    let a = arch(architecture);
    let path = match std::env::var_os(a.var) {
        Some(p) => PathBuf::from(p),
        None => {
            let exe =
                std::env::current_exe().map_err(|e| SupervisorError::OwnFolder(Arc::new(e)))?;
            let all = candidates(&a, &exe, data_home());
            match all.iter().find(|p| p.is_file()) {
                Some(p) => p.clone(),
                None => {
                    return Err(SupervisorError::Missing {
                        oci: a.oci,
                        var: a.var,
                        looked: all
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
    };
    check_cached(&path, &a)?;
    Ok(path)
}

/// [`check`], remembered per file and modification time (a plan asks once per function).
fn check_cached(path: &Path, a: &Arch) -> Result<(), SupervisorError> {
    type Seen = Vec<(
        PathBuf,
        Option<std::time::SystemTime>,
        Result<(), SupervisorError>,
    )>;
    static SEEN: Mutex<Seen> = Mutex::new(Vec::new());
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, r)) = seen
        .iter()
        .find(|(p, m, _)| p == path && *m == modified && modified.is_some())
    {
        return r.clone();
    }
    let r = std::fs::read(path)
        .map_err(|e| SupervisorError::Unreadable {
            oci: a.oci,
            var: a.var,
            path: path.to_owned(),
            source: Arc::new(e),
        })
        .and_then(|bytes| {
            check(&bytes, a.image).map_err(|why| SupervisorError::Unfit {
                path: path.to_owned(),
                why,
            })
        });
    seen.push((path.to_owned(), modified, r.clone()));
    r
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
    .ok()
}

/// The machine (`e_machine`) of a 64-bit little-endian ELF and the program interpreter it asks
/// for, if any (a static program asks for none).
///
/// # Errors
/// When the bytes are not such an ELF, or its program headers are damaged.
pub fn program_interpreter(bin: &[u8]) -> Result<(u16, Option<String>), Elf> {
    if bin.get(..4) != Some(b"\x7fELF".as_slice())
        || bin.get(4) != Some(&2)
        || bin.get(5) != Some(&1)
    {
        return Err(Elf::NotElf);
    }
    let bad = || Elf::Damaged;
    let machine = u16_at(bin, 18).ok_or_else(bad)?;
    let phoff = u64_at(bin, 0x20).ok_or_else(bad)?;
    let phentsize = usize::from(u16_at(bin, 0x36).ok_or_else(bad)?);
    let phnum = usize::from(u16_at(bin, 0x38).ok_or_else(bad)?);
    for i in 0..phnum {
        let at = phoff.saturating_add(i.saturating_mul(phentsize));
        if u32_at(bin, at).ok_or_else(bad)? == PT_INTERP {
            let offset = u64_at(bin, at.saturating_add(8)).ok_or_else(bad)?;
            let size = u64_at(bin, at.saturating_add(32)).ok_or_else(bad)?;
            let text = bin
                .get(offset..offset.saturating_add(size))
                .ok_or_else(bad)?;
            return Ok((
                machine,
                Some(
                    String::from_utf8_lossy(text)
                        .trim_end_matches('\0')
                        .to_owned(),
                ),
            ));
        }
    }
    Ok((machine, None))
}

/// The program interpreter of an ELF for machine `machine`: `Err` when it is not one.
fn interpreter(bin: &[u8], machine: u16) -> Result<Option<String>, Elf> {
    let (found, interp) = program_interpreter(bin)?;
    if found != machine {
        let name = match found {
            0x3e => "x86_64",
            0xb7 => "aarch64",
            _ => "another architecture",
        };
        return Err(Elf::Machine(name));
    }
    Ok(interp)
}

/// Checks that `bin` is a static Linux program for `architecture` carrying this
/// scar's supervisor version.
///
/// # Errors
/// What is wrong, with how to get a right one.
pub fn check(bin: &[u8], architecture: super::Arch) -> Result<(), Unfit> {
    let a = arch(architecture);
    match interpreter(bin, a.machine) {
        Err(why) => {
            return Err(Unfit::NotFor {
                oci: a.oci,
                var: a.var,
                why,
            });
        }
        Ok(Some(interp)) => {
            return Err(Unfit::Dynamic {
                interp,
                rust: a.rust,
            });
        }
        Ok(None) => {}
    }
    match scar_contract::marked_version(bin) {
        Some(v) if v == scar_contract::VERSION => Ok(()),
        Some(v) => Err(Unfit::Version(v.to_owned())),
        None => Err(Unfit::Unmarked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header for `machine` with one program header of type `ptype`.
    fn elf(machine: u16, ptype: u32, marker: bool) -> Vec<u8> {
        let mut b = vec![0u8; 0x40 + 0x38];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        b[0x40..0x44].copy_from_slice(&ptype.to_le_bytes());
        let interp = b"/lib/ld-musl-x86_64.so.1\0";
        let offset = b.len() as u64;
        b[0x48..0x50].copy_from_slice(&offset.to_le_bytes());
        b[0x60..0x68].copy_from_slice(&(interp.len() as u64).to_le_bytes());
        b.extend_from_slice(interp);
        if marker {
            b.extend_from_slice(scar_contract::VERSION_MARKER.as_bytes());
        }
        b
    }

    #[test]
    fn only_a_static_marked_program_of_the_right_architecture_passes() {
        assert_eq!(
            check(&elf(0x3e, 1, true), super::super::Arch::Amd64),
            Ok(())
        );
        assert_eq!(
            check(&elf(0xb7, 1, true), super::super::Arch::Arm64),
            Ok(())
        );
        let dynamic = check(&elf(0x3e, PT_INTERP, true), super::super::Arch::Amd64)
            .expect_err("dynamic")
            .to_string();
        assert!(
            dynamic.contains("dynamically linked")
                && dynamic.contains("/lib/ld-musl-x86_64.so.1")
                && dynamic.contains("build-supervisor.sh"),
            "{dynamic}"
        );
        let other = check(&elf(0xb7, 1, true), super::super::Arch::Amd64)
            .expect_err("wrong machine")
            .to_string();
        assert!(
            other.contains("aarch64") && other.contains(ENV_X86_64),
            "{other}"
        );
        let unmarked = check(&elf(0x3e, 1, false), super::super::Arch::Amd64)
            .expect_err("no mark")
            .to_string();
        assert!(unmarked.contains("version mark"), "{unmarked}");
        let mut old = elf(0x3e, 1, false);
        old.extend_from_slice(b"\0scar-supervisor 0.0.1\0");
        assert!(
            check(&old, super::super::Arch::Amd64)
                .expect_err("old")
                .to_string()
                .contains("0.0.1")
        );
        assert!(check(b"#!/bin/sh\n", super::super::Arch::Amd64).is_err());
    }

    #[test]
    fn a_cargo_target_folder_is_searched_newest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::create_dir_all(target.join("debug/deps")).expect("mkdir");
        std::fs::write(target.join("CACHEDIR.TAG"), "").expect("tag");
        let triple = target.join("aarch64-unknown-linux-musl");
        for p in ["debug", "supervisor"] {
            std::fs::create_dir_all(triple.join(p)).expect("mkdir");
            std::fs::write(triple.join(p).join("scar-supervisor"), p).expect("write");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let a = arch(super::super::Arch::Arm64);
        let c = candidates(
            &a,
            &target.join("debug/deps/image-0123"),
            Some(dir.path().join("share")),
        );
        assert_eq!(
            c,
            [
                target.join("debug/deps/scar-supervisor-aarch64"),
                triple.join("supervisor/scar-supervisor"),
                triple.join("debug/scar-supervisor"),
                dir.path()
                    .join("share/scar/supervisor/aarch64/bin/scar-supervisor"),
                target.join("debug/deps/scar-supervisor"),
            ]
        );
    }
}
