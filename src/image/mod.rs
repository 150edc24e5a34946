//! Daemonless image assembly, the pure part: the layer scar adds to a function's base image
//! (the supervisor, the script and the function's configuration), the rewritten image config
//! (entrypoint, diff ids, history) and manifest, all byte-for-byte deterministic, so the same
//! inputs always give the same digests and nothing is pushed twice.
//!
//! [`registry`] is the registry API client, [`build`] assembles and pushes an image with it.

use std::io::Write;

pub mod build;
pub mod local;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod supervisor;

use flate2::Compression;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the supervisor lives in an assembled image (a tar path: no leading `/`).
pub const SUPERVISOR_PATH: &str = scar_contract::SUPERVISOR_PATH.split_at(1).1;
/// Where the function's configuration lives, which the supervisor reads.
pub const CONFIG_PATH: &str = scar_contract::CONFIG_PATH.split_at(1).1;
/// Where the script lives.
pub const SCRIPT_PATH: &str = scar_contract::SCRIPT_PATH.split_at(1).1;

/// The CPU architectures scar assembles images for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit x86: OCI's `amd64`, Lambda's `x86_64`.
    Amd64,
    /// 64-bit ARM: OCI's and Lambda's `arm64`, Rust's `aarch64`.
    Arm64,
}

impl Arch {
    /// OCI's name (`amd64`, `arm64`), as image configurations and indexes say it.
    #[must_use]
    pub fn oci(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// From OCI's name; `None` for an architecture scar does not build for.
    #[must_use]
    pub fn from_oci(name: &str) -> Option<Arch> {
        match name {
            "amd64" => Some(Arch::Amd64),
            "arm64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// From Lambda's name (`x86_64`, `arm64`); `None` for anything else.
    #[must_use]
    pub fn from_lambda(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::Amd64),
            "arm64" => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// From Rust's name (`std::env::consts::ARCH`); `None` for anything else.
    #[must_use]
    pub fn from_rust(name: &str) -> Option<Arch> {
        [Arch::Amd64, Arch::Arm64]
            .into_iter()
            .find(|a| a.rust() == name)
    }

    /// Rust's name (`x86_64`, `aarch64`), as target triples say it.
    #[must_use]
    pub fn rust(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }
}

/// OCI media types.
pub mod media {
    /// An OCI image manifest.
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image config.
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// A gzip-compressed layer.
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// Docker's manifest (schema 2), which registries also serve.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker's image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker's gzip-compressed layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}

/// `sha256:<hex>` of `bytes`.
#[must_use]
pub fn digest(bytes: &[u8]) -> String {
    let sum = Sha256::digest(bytes);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// One file of the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Path inside the image, without a leading `/`.
    pub path: String,
    /// Unix mode (0o755 for programs, 0o644 for data).
    pub mode: u32,
    /// Content.
    pub bytes: Vec<u8>,
}

/// A built layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The compressed tar, as pushed.
    pub blob: Vec<u8>,
    /// Digest of `blob` (the manifest's layer digest).
    pub digest: String,
    /// Digest of the uncompressed tar (the config's diff id).
    pub diff_id: String,
    /// What it holds, for the image's history.
    pub comment: String,
}

/// Builds a layer holding `files` (and their parent folders), deterministically: sorted,
/// owned by root, every time stamp zero, gzip header without a name or time.
///
/// # Errors
/// When a path cannot go into a tar header.
pub fn layer(files: &[File], comment: &str) -> std::io::Result<Layer> {
    layer_at(files, comment, Compression::default())
}

fn layer_at(files: &[File], comment: &str, level: Compression) -> std::io::Result<Layer> {
    let raw = tar_of(files)?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), level);
    gz.write_all(&raw)?;
    let blob = gz.finish()?;
    Ok(Layer {
        digest: digest(&blob),
        diff_id: digest(&raw),
        blob,
        comment: comment.to_owned(),
    })
}

/// The uncompressed tar of a layer holding `files`, as [`layer`] makes it (its digest is the
/// layer's diff id).
///
/// # Errors
/// When a path cannot go into a tar header.
pub fn tar_of(files: &[File]) -> std::io::Result<Vec<u8>> {
    let mut files = files.to_vec();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut dirs: Vec<String> = Vec::new();
    for f in &files {
        let mut p = String::new();
        let parts: Vec<&str> = f.path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            p.push_str(part);
            p.push('/');
            if !dirs.contains(&p) {
                dirs.push(p.clone());
            }
        }
    }
    dirs.sort();
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for d in &dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        tar.append_data(&mut h, d, std::io::empty())?;
    }
    for f in &files {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(f.mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(f.bytes.len() as u64);
        tar.append_data(&mut h, &f.path, f.bytes.as_slice())?;
    }
    tar.into_inner()
}

/// The base image's config with scar's layers on top: their diff ids appended, the entrypoint
/// set to the supervisor (the base's `Cmd` cleared, as SCAR's Dockerfile did), a history entry
/// per layer, and `labels` (the supervisor version and the build's inputs).
#[must_use]
pub fn config(base: &Value, layers: &[&Layer], labels: &[(&str, &str)]) -> Value {
    let mut c = base.clone();
    if !c.is_object() {
        c = json!({});
    }
    let mut diff_ids = c
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    diff_ids.extend(layers.iter().map(|l| json!(l.diff_id)));
    c["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    if !c["config"].is_object() {
        c["config"] = json!({});
    }
    c["config"]["Entrypoint"] = json!([format!("/{SUPERVISOR_PATH}")]);
    c["config"]["Cmd"] = Value::Null;
    if !c["config"]["Labels"].is_object() {
        c["config"]["Labels"] = json!({});
    }
    for (k, v) in labels {
        c["config"]["Labels"][*k] = json!(v);
    }
    if !c["history"].is_array() {
        c["history"] = json!([]);
    }
    if let Some(h) = c["history"].as_array_mut() {
        for l in layers {
            h.push(json!({"created_by": format!("scar: {}", l.comment)}));
        }
    }
    // No clock in the image: the same inputs give the same digest.
    if let Some(o) = c.as_object_mut() {
        o.remove("created");
    }
    c
}

/// The manifest of the assembled image: the base's layers, then scar's, and the new config, in
/// the base manifest's family (OCI, or Docker's schema 2), which Lambda runs either way.
#[must_use]
pub fn manifest(base: &Value, config_bytes: &[u8], layers: &[&Layer]) -> Value {
    let docker = base.get("mediaType").and_then(Value::as_str) == Some(media::DOCKER_MANIFEST);
    let (manifest_type, config_type, layer_type) = if docker {
        (
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP,
        )
    } else {
        (media::MANIFEST, media::CONFIG, media::LAYER_GZIP)
    };
    let mut all = base
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    all.extend(layers.iter().map(|l| {
        json!({
            "mediaType": layer_type,
            "digest": l.digest,
            "size": l.blob.len(),
        })
    }));
    json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": digest(config_bytes), "size": config_bytes.len()},
        "layers": all,
    })
}

/// What decides whether an image must be assembled again: the base's digest, the script, the
/// supervisor version and the configuration. Equal inputs, equal key, nothing pushed.
#[must_use]
pub fn inputs_key(
    base_digest: &str,
    script: &str,
    supervisor_version: &str,
    config: &str,
) -> String {
    digest(format!("{base_digest}\n{supervisor_version}\n{script}\n{config}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn files() -> Vec<File> {
        vec![
            File {
                path: SCRIPT_PATH.into(),
                mode: 0o755,
                bytes: b"echo hi\n".to_vec(),
            },
            File {
                path: SUPERVISOR_PATH.into(),
                mode: 0o755,
                bytes: vec![0x7f, b'E', b'L', b'F'],
            },
            File {
                path: CONFIG_PATH.into(),
                mode: 0o644,
                bytes: b"{}".to_vec(),
            },
        ]
    }

    #[test]
    fn layers_are_deterministic_and_hold_the_files() {
        let a = layer(&files(), "t").expect("layer");
        let mut reversed = files();
        reversed.reverse();
        let b = layer(&reversed, "t").expect("layer");
        assert_eq!(a, b, "the order given does not matter");
        assert!(a.digest.starts_with("sha256:") && a.digest.len() == 71);
        assert_ne!(a.digest, a.diff_id);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(a.blob.as_slice())
            .read_to_end(&mut raw)
            .expect("gunzip");
        assert_eq!(digest(&raw), a.diff_id);
        let mut archive = tar::Archive::new(raw.as_slice());
        let entries: Vec<(String, u32, u64)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let h = e.header();
                (
                    e.path().expect("path").display().to_string(),
                    h.mode().expect("mode"),
                    h.mtime().expect("mtime"),
                )
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/",
                "opt/scar/",
                "opt/scar/bin/",
                "opt/scar/bin/scar-supervisor",
                "opt/scar/function.json",
                "opt/scar/script.sh",
            ]
        );
        assert!(entries.iter().all(|(_, _, t)| *t == 0), "no time stamps");
        assert_eq!(
            entries
                .iter()
                .find(|(p, _, _)| p == SUPERVISOR_PATH)
                .map(|e| e.1),
            Some(0o755)
        );
    }

    #[test]
    fn the_config_runs_the_supervisor_on_top_of_the_base() {
        let base = json!({
            "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created_by": "base"}]
        });
        let l = layer(&files(), "t").expect("layer");
        let c = config(&base, &[&l], &[("scar.supervisor.version", "0.1.0")]);
        assert_eq!(c["rootfs"]["diff_ids"], json!(["sha256:base", l.diff_id]));
        assert_eq!(
            c["config"]["Entrypoint"],
            json!(["/opt/scar/bin/scar-supervisor"])
        );
        assert_eq!(c["config"]["Cmd"], Value::Null);
        assert_eq!(
            c["config"]["Env"],
            json!(["PATH=/usr/bin"]),
            "the base's environment stays"
        );
        assert_eq!(c["config"]["Labels"]["scar.supervisor.version"], "0.1.0");
        assert_eq!(c["architecture"], "amd64");
        assert_eq!(c["history"].as_array().map(Vec::len), Some(2));
        assert!(c.get("created").is_none());
        let bytes = serde_json::to_vec(&c).expect("json");
        let m = manifest(
            &json!({"layers": [{"digest": "sha256:b1", "size": 3, "mediaType": media::LAYER_GZIP}]}),
            &bytes,
            &[&l],
        );
        assert_eq!(m["layers"].as_array().map(Vec::len), Some(2));
        assert_eq!(m["layers"][1]["digest"], json!(l.digest));
        assert_eq!(m["config"]["digest"], json!(digest(&bytes)));
    }

    #[test]
    fn the_inputs_key_moves_with_each_input() {
        let k = inputs_key("sha256:a", "echo", "0.1.0", "{}");
        assert_eq!(k, inputs_key("sha256:a", "echo", "0.1.0", "{}"));
        assert_ne!(k, inputs_key("sha256:b", "echo", "0.1.0", "{}"));
        assert_ne!(k, inputs_key("sha256:a", "echo 2", "0.1.0", "{}"));
        assert_ne!(k, inputs_key("sha256:a", "echo", "0.2.0", "{}"));
        assert_eq!(
            digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
