//! A real container registry on loopback (Debian's `docker-registry`, the CNCF distribution
//! server) for the image tests, and base images the tests build themselves and push with an
//! independent client (Debian's `skopeo`).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A running registry, stopped on drop.
pub struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

/// The base images the moto tests' manifests name, served by [`shared`].
pub const BASES: [&str; 9] = [
    "grycap/imagemagick:latest",
    "grycap/ffmpeg:latest",
    "grycap/cowsay:latest",
    "grycap/darknet:latest",
    "grycap/aws-cli:latest",
    "library/alpine:latest",
    "library/alpine:3.20",
    "nvidia/cuda:12.4.1-runtime-ubuntu22.04",
    "deephdc/deep-oc-plants-classification-tf:latest",
];

/// The ECR registry host of moto's account in us-east-1.
pub const MOTO_ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// One registry for the whole test process, standing in for Docker Hub (seeded with
/// [`BASES`]) and for moto's ECR (moto has the ECR API but not the registry API). It stops when
/// the test process ends.
pub fn shared() -> &'static Registry {
    static SHARED: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let r = Registry::launch(true);
        let first = push_base(&r, "base/seed", "1", &["amd64"]);
        for b in BASES {
            let o = skopeo(&[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{first}"),
                &format!("docker://{}/{b}", r.host()),
            ]);
            assert!(
                o.status.success(),
                "seeding {b}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        r
    })
}

/// `SCAR_REGISTRY_ENDPOINTS` sending Docker Hub and moto's ECR to `r`.
#[must_use]
pub fn endpoints(r: &Registry) -> String {
    // moto's ECR in the other region a test uses (an environment in eu-west-1) too.
    let (host, other) = (r.host(), MOTO_ECR.replace("us-east-1", "eu-west-1"));
    format!("docker.io=http://{host},{MOTO_ECR}=http://{host},{other}=http://{host}")
}

/// A supervisor-layer cache shared by the tests (compressing the supervisor once).
#[must_use]
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("scar-tests-cache")
}

impl Registry {
    /// Starts `docker-registry` on a free port with its own storage and no authentication,
    /// and waits until it answers `/v2/`.
    ///
    /// # Panics
    /// When the program is missing (`.ci/run` installs it) or does not come up.
    pub fn start() -> Registry {
        Registry::launch(false)
    }

    fn launch(outlive_guard: bool) -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: scar-tests\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write the registry's config");
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).expect("the log file");
        let mut command = if outlive_guard {
            // A static is never dropped: a watcher stops the registry when this process ends.
            let mut c = Command::new("sh");
            c.args([
                "-c",
                "docker-registry serve \"$1\" & r=$!; while kill -0 \"$2\" 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; done; kill $r 2>/dev/null",
                "sh",
                &config.display().to_string(),
                &std::process::id().to_string(),
            ]);
            c
        } else {
            let mut c = Command::new("docker-registry");
            c.args(["serve", &config.display().to_string()]);
            c
        };
        assert!(
            Command::new("docker-registry")
                .arg("--version")
                .output()
                .is_ok(),
            "docker-registry runs (apt-get install docker-registry; .ci/run does it)"
        );
        let child = command
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("the registry starts");
        let r = Registry {
            child,
            port,
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                std::io::Read::read(&mut s, &mut buf)
                    .is_ok_and(|n| n >= 12 && &buf[9..12] == b"200")
            });
            if up {
                return r;
            }
            assert!(Instant::now() < deadline, "the registry did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    #[must_use]
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The access log's request lines so far (`"PUT /v2/... HTTP/1.1" 201`).
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split('"')
                    .nth(1)
                    .map(|r| format!("{r} {}", l.split('"').nth(2).unwrap_or("").trim()))
            })
            .collect()
    }

    /// The requests that write: uploads and manifest puts.
    #[must_use]
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.starts_with("PUT ") || r.starts_with("POST ") || r.starts_with("PATCH "))
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    h.iter().map(|b| format!("{b:02x}")).collect()
}

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn blob(&self, bytes: &[u8]) -> (String, usize) {
        let hex = sha(bytes);
        let p = self.dir.join("blobs/sha256").join(&hex);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("blobs dir");
        std::fs::write(p, bytes).expect("blob");
        (format!("sha256:{hex}"), bytes.len())
    }

    /// One image for `arch`: a layer with `etc/os-release` naming it, and a config.
    fn image(&self, arch: &str) -> Value {
        let text = format!("NAME=\"scar test base\"\nARCH={arch}\n");
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        tar.append_data(&mut h, "etc/os-release", text.as_bytes())
            .expect("tar");
        let layer = tar.into_inner().expect("tar");
        self.image_of(
            arch,
            &[layer],
            json!({"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]}),
        )
    }

    /// An image for `arch` of `layers` (uncompressed tars, bottom first) and `config` (the
    /// config's `config` object: Env, Entrypoint, Cmd...).
    fn image_of(&self, arch: &str, layers: &[Vec<u8>], config: Value) -> Value {
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for raw in layers {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(raw).expect("gzip");
            let blob = gz.finish().expect("gzip");
            let (digest, size) = self.blob(&blob);
            descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size}));
            diff_ids.push(format!("sha256:{}", sha(raw)));
        }
        let config = json!({
            "architecture": arch, "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "the scar tests"}]
        });
        let (cfg, cfg_size) = self.blob(config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
            "layers": descriptors
        });
        let (d, size) = self.blob(manifest.to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size,
               "platform": {"architecture": arch, "os": "linux"}})
    }
}

/// Pushes the OCI layout in `tmp` (whose index names `top`) to `registry` as `name:tag`.
fn push_layout(registry: &Registry, tmp: &Path, top: Value, name: &str, tag: &str) -> String {
    let mut entry = top;
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    if let Some(o) = entry.as_object_mut() {
        o.remove("platform");
    }
    std::fs::write(
        tmp.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [entry]}).to_string(),
    )
    .expect("index.json");
    std::fs::write(tmp.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    let dest = format!("{}/{name}:{tag}", registry.host());
    let o = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", tmp.display()),
        &format!("docker://{dest}"),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    dest
}

/// Builds an image for `arch` from `layers` (uncompressed tars, bottom first) and the config's
/// `config` object, and pushes it to `registry` as `name:tag` with skopeo.
pub fn push_image(
    registry: &Registry,
    name: &str,
    tag: &str,
    arch: &str,
    layers: &[Vec<u8>],
    config: Value,
) -> String {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let layout = Layout {
        dir: tmp.path().to_owned(),
    };
    let top = layout.image_of(arch, layers, config);
    push_layout(registry, tmp.path(), top, name, tag)
}

/// Builds a small base image for `arches` (an index when more than one) as an OCI layout and
/// pushes it to `registry` as `name:tag` with skopeo. Returns the pushed reference.
pub fn push_base(registry: &Registry, name: &str, tag: &str, arches: &[&str]) -> String {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let layout = Layout {
        dir: tmp.path().to_owned(),
    };
    let images: Vec<Value> = arches.iter().map(|a| layout.image(a)).collect();
    let top = if images.len() == 1 {
        images[0].clone()
    } else {
        let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": images});
        let (d, size) = layout.blob(index.to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": size})
    };
    push_layout(registry, tmp.path(), top, name, tag)
}

/// Runs skopeo (no policy file on a fresh machine: accept anything, it is a test).
pub fn skopeo(args: &[&str]) -> std::process::Output {
    let policy = std::env::temp_dir().join("scar-tests-skopeo-policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("skopeo runs (apt-get install skopeo; .ci/run does it)")
}

/// `skopeo inspect [--config] --raw?` of `image` as JSON.
pub fn inspect(image: &str, config: bool) -> Value {
    let mut args = vec!["inspect", "--no-tags", "--tls-verify=false"];
    if config {
        args.push("--config");
    }
    let target = format!("docker://{image}");
    args.push(&target);
    let o = skopeo(&args);
    assert!(
        o.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("skopeo prints JSON")
}

/// Copies `image` out of its registry into a `dir:` layout (manifest.json, config and layer
/// blobs named by their hex digest) with skopeo.
pub fn copy_to_dir(image: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temporary folder");
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &format!("dir:{}", tmp.path().display()),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    tmp
}

/// Copies `image` to a `dir:` layout with skopeo and answers the files of each layer, in
/// order: (path, content, mode).
pub fn layers_files(image: &str) -> Vec<Vec<(String, Vec<u8>, u32)>> {
    let tmp = copy_to_dir(image);
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("manifest.json")).expect("manifest.json"),
    )
    .expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            let hex = l["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:");
            files_of(&tmp.path().join(hex))
        })
        .collect()
}

fn files_of(path: &Path) -> Vec<(String, Vec<u8>, u32)> {
    let blob = std::fs::read(path).expect("layer blob");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
    let mut out = Vec::new();
    for e in archive.entries().expect("a tar") {
        let mut e = e.expect("an entry");
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().expect("path").display().to_string();
        let mode = e.header().mode().expect("mode");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).expect("read");
        out.push((name, bytes, mode));
    }
    out
}
