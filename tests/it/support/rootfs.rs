//! Root file systems for the runtime tests: layers the tests write (files, links, whiteouts),
//! and an unpacker that applies an image's layers in order as the OCI image spec says
//! (whiteouts and opaque folders hide what lower layers put there; links stay inside the root;
//! `..` entries and devices are refused), written here independently of scar, to check what
//! scar pushed by running it.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// One entry of a layer.
pub enum Entry {
    /// A regular file.
    File(String, Vec<u8>, u32),
    /// A folder.
    Dir(String),
    /// A symbolic link: path, target.
    Symlink(String, String),
    /// A hard link: path, the path (in the layer) of the file it links to.
    Hardlink(String, String),
    /// A whiteout: hides `path` of the lower layers.
    Whiteout(String),
    /// An opaque marker: hides everything lower layers put in folder `path`.
    Opaque(String),
}

impl Entry {
    /// A regular file.
    pub fn file(path: &str, bytes: &[u8], mode: u32) -> Entry {
        Entry::File(path.into(), bytes.to_vec(), mode)
    }
}

/// An uncompressed tar of `entries`, in order.
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h
    };
    let hidden = |path: &str, marker: &str| {
        let p = Path::new(path);
        let dir = p
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let name = format!(
            "{marker}{}",
            p.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        }
    };
    for e in entries {
        match e {
            Entry::File(p, bytes, mode) => {
                let mut h = header(tar::EntryType::Regular, *mode, bytes.len() as u64);
                tar.append_data(&mut h, p, bytes.as_slice())
                    .expect("tar file");
            }
            Entry::Dir(p) => {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, p, std::io::empty())
                    .expect("tar dir");
            }
            Entry::Symlink(p, target) => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                tar.append_link(&mut h, p, target).expect("tar symlink");
            }
            Entry::Hardlink(p, target) => {
                let mut h = header(tar::EntryType::Link, 0o644, 0);
                tar.append_link(&mut h, p, target).expect("tar link");
            }
            Entry::Whiteout(p) => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                tar.append_data(&mut h, hidden(p, ".wh."), std::io::empty())
                    .expect("tar whiteout");
            }
            Entry::Opaque(dir) => {
                let mut h = header(tar::EntryType::Regular, 0o644, 0);
                tar.append_data(&mut h, format!("{dir}/.wh..wh..opq"), std::io::empty())
                    .expect("tar opaque");
            }
        }
    }
    tar.into_inner().expect("tar")
}

/// `path` inside `root`, refusing `..` and anything that is not a plain relative path.
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn remove(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).expect("remove dir"),
        Ok(_) => std::fs::remove_file(p).expect("remove file"),
        Err(_) => {}
    }
}

/// Applies one layer (an uncompressed tar) to `root`: its whiteouts first, to what lower
/// layers put there, then its entries.
pub fn apply(root: &Path, raw: &[u8]) {
    let mut archive = tar::Archive::new(raw);
    let mut entries = Vec::new();
    for e in archive.entries().expect("a tar") {
        let mut e = e.expect("an entry");
        let path = e.path().expect("a path").into_owned();
        let kind = e.header().entry_type();
        let mode = e.header().mode().unwrap_or(0o644);
        let link = e.link_name().ok().flatten().map(|l| l.into_owned());
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).expect("read");
        entries.push((path, kind, mode, link, bytes));
    }
    for (path, ..) in &entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(dir) = inside(root, path.parent().unwrap_or(Path::new(""))) else {
            continue;
        };
        if name == ".wh..wh..opq" {
            if let Ok(children) = std::fs::read_dir(&dir) {
                for c in children.flatten() {
                    remove(&c.path());
                }
            }
        } else if let Some(hidden) = name.strip_prefix(".wh.") {
            remove(&dir.join(hidden));
        }
    }
    for (path, kind, mode, link, bytes) in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with(".wh.") {
            continue;
        }
        let Some(target) = inside(root, &path) else {
            panic!("a layer entry escapes the root: {}", path.display());
        };
        if target == root {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).expect("parents");
        }
        match kind {
            tar::EntryType::Directory => {
                if !target.is_dir() {
                    remove(&target);
                }
                std::fs::create_dir_all(&target).expect("dir");
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove(&target);
                std::fs::write(&target, &bytes).expect("file");
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .expect("mode");
            }
            tar::EntryType::Symlink => {
                remove(&target);
                std::os::unix::fs::symlink(link.expect("a symlink target"), &target)
                    .expect("symlink");
            }
            tar::EntryType::Link => {
                let source =
                    inside(root, &link.expect("a link target")).expect("a link inside the root");
                remove(&target);
                std::fs::hard_link(source, &target).expect("hard link");
            }
            // Devices, fifos: not made unprivileged, and Lambda gives its own /dev.
            _ => {}
        }
    }
}

/// Copies `image` out of its registry with skopeo and unpacks its layers in order into a new
/// folder; answers the folder and the image's config.
pub fn unpack(image: &str) -> (tempfile::TempDir, Value) {
    let tmp = super::registry::copy_to_dir(image);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let blob = |d: &Value| {
        std::fs::read(
            tmp.path()
                .join(d.as_str().expect("digest").trim_start_matches("sha256:")),
        )
        .expect("blob")
    };
    let config: Value =
        serde_json::from_slice(&blob(&manifest["config"]["digest"])).expect("config JSON");
    let root = tempfile::tempdir().expect("root");
    for l in manifest["layers"].as_array().expect("layers") {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(blob(&l["digest"]).as_slice()),
            &mut raw,
        )
        .expect("gunzip");
        apply(root.path(), &raw);
    }
    (root, config)
}
