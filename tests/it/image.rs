//! Image assembly against a real registry (Debian's `docker-registry`), on base images the
//! tests build themselves and push with skopeo; skopeo, an independent client, then confirms
//! what scar pushed: the extra layers, the entrypoint, the labels and the architecture.

use crate::support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::moto::Moto;
use crate::support::registry::{Registry, inspect, layers_files, push_base, shared};
use crate::support::{ok, stderr, stdout};

/// Writes stack `name` with one function, `resize`, on `image`.
fn stack_named(name: &str, image: &str, arch: &str, script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("stack.yaml"),
        format!(
            "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: {name}
spec:
  region: us-east-1
  role:
    managed: true
"
        ),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("resize.yaml"),
        format!(
            "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: resize
spec:
  image: {image}
  architecture: {arch}
  script: resize.sh
  input:
    - bucket: {name}-data
      prefix: in/
  output:
    - bucket: {name}-data
      prefix: out/
"
        ),
    )
    .expect("write");
    std::fs::write(dir.path().join("resize.sh"), script).expect("write");
    dir
}

fn stack(image: &str, arch: &str, script: &str) -> tempfile::TempDir {
    stack_named("imgs", image, arch, script)
}

fn build(dir: &Path, to: &str, env: &[(&str, &str)]) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_scar"));
    c.args(["image", "build", ".", "resize", "--to", to])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("SCAR_CACHE_DIR", dir.join(".cache"))
        .env_remove("SCAR_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("scar runs")
}

/// The static supervisor scar finds for `arch` (what `scripts/build-supervisor.sh` built).
fn supervisor_bytes(arch: &str) -> Vec<u8> {
    std::fs::read(support::supervisor::binary(arch)).expect("the static supervisor")
}

/// A glibc build of the supervisor (built by `cargo test --workspace` for the supervisor's own
/// command-line test): a dynamically linked program.
fn glibc_supervisor() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_scar")).with_file_name("scar-supervisor");
    assert!(
        p.is_file(),
        "{} is built by `cargo test --workspace`",
        p.display()
    );
    p
}

#[test]
fn assembles_on_a_base_pushes_once_and_skopeo_sees_it() {
    let reg = Registry::start();
    let base = push_base(&reg, "base/tiny", "1", &["amd64"]);
    let base_layer = inspect(&base, false)["Layers"][0].clone();
    let dir = stack(
        &base,
        "x86_64",
        "#!/bin/sh\nconvert \"$INPUT_FILE_PATH\" \"$TMP_OUTPUT_DIR/out.png\"\n",
    );
    let target = format!("{}/scar/imgs/resize:v1", reg.host());

    let o = build(dir.path(), &target, &[]);
    ok(&o);
    let digest = stdout(&o).trim().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // What skopeo reads back.
    let m = inspect(&target, false);
    assert_eq!(m["Digest"], Value::from(digest.clone()));
    assert_eq!(m["Architecture"], "amd64");
    assert_eq!(m["Os"], "linux");
    let layers = m["Layers"].as_array().expect("layers");
    assert_eq!(
        layers.len(),
        3,
        "the base's layer, the supervisor's, the function's: {m}"
    );
    assert_eq!(layers[0], base_layer, "the base's layer is kept as it is");
    assert_eq!(
        m["Labels"]["scar.supervisor.version"],
        env!("CARGO_PKG_VERSION")
    );
    let c = inspect(&target, true);
    assert_eq!(
        c["config"]["Entrypoint"],
        serde_json::json!(["/opt/scar/bin/scar-supervisor"])
    );
    assert!(c["config"]["Cmd"].is_null(), "{c}");
    assert_eq!(
        c["config"]["Env"][0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "the base's environment is kept"
    );
    assert_eq!(c["rootfs"]["diff_ids"].as_array().map(Vec::len), Some(3));
    assert!(c.get("created").is_none(), "no clock in the image");

    // The layers' content, read by skopeo.
    let files = layers_files(&target);
    let supervisor = &files[1];
    assert_eq!(supervisor.len(), 1);
    assert_eq!(supervisor[0].0, "opt/scar/bin/scar-supervisor");
    assert_eq!(supervisor[0].2, 0o755);
    assert!(
        supervisor[0].1 == supervisor_bytes("amd64"),
        "the supervisor is the built binary"
    );
    let own = &files[2];
    let names: Vec<&str> = own.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["opt/scar/function.json", "opt/scar/script.sh"]);
    let config: Value = serde_json::from_slice(&own[0].1).expect("function.json is JSON");
    assert_eq!(config["stack"], "imgs");
    assert_eq!(config["function"], "resize");
    assert_eq!(config["outputs"][0]["prefix"], "out/");
    assert!(
        config["script"]
            .as_str()
            .is_some_and(|s| s.contains("convert"))
    );
    assert_eq!(own[1].2, 0o755);

    // The same inputs again: nothing is written to the registry.
    let writes = reg.writes().len();
    let o = build(dir.path(), &target, &[]);
    ok(&o);
    assert_eq!(stdout(&o).trim(), digest, "same inputs, same digest");
    assert!(stderr(&o).contains("nothing to push"), "{}", stderr(&o));
    assert_eq!(reg.writes().len(), writes, "{:?}", reg.writes());

    // A new script: a new image; the supervisor layer is not sent again.
    std::fs::write(dir.path().join("resize.sh"), "#!/bin/sh\necho v2\n").expect("write");
    let o = build(dir.path(), &target, &[]);
    ok(&o);
    assert_ne!(stdout(&o).trim(), digest);
    let supervisor_digest = layers[1].as_str().expect("digest");
    let uploads_of_supervisor = reg
        .writes()
        .iter()
        .filter(|w| w.starts_with("PUT ") && w.contains(supervisor_digest))
        .count();
    assert_eq!(uploads_of_supervisor, 1, "{:?}", reg.writes());

    // Another repository of the same registry: the base's layer is mounted, not copied.
    let other = format!("{}/scar/imgs/other", reg.host());
    let o = build(dir.path(), &other, &[]);
    ok(&o);
    assert!(
        reg.writes()
            .iter()
            .any(|w| w.contains("mount=") && w.contains("from=base/tiny") && w.contains(" 201 ")),
        "{:?}",
        reg.writes()
    );
    let by_digest = format!("{other}@{}", stdout(&o).trim());
    assert_eq!(
        inspect(&by_digest, false)["Layers"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn an_index_gives_each_architecture_its_own_base() {
    let reg = Registry::start();
    let base = push_base(&reg, "base/multi", "2", &["amd64", "arm64"]);
    let dir = stack(&base, "arm64", "echo hi\n");
    let target = format!("{}/scar/imgs/resize-arm", reg.host());

    // No arm64 supervisor: said plainly, nothing pushed.
    let o = build(
        dir.path(),
        &target,
        &[("SCAR_SUPERVISOR_ARM64", "/nonexistent/scar-supervisor")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("SCAR_SUPERVISOR_ARM64"),
        "{}",
        stderr(&o)
    );
    // An x86_64 program for an arm64 image: refused.
    let static_x86 = support::supervisor::binary("amd64");
    let o = build(
        dir.path(),
        &target,
        &[("SCAR_SUPERVISOR_ARM64", static_x86.to_str().expect("utf-8"))],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("built for x86_64"), "{}", stderr(&o));
    assert!(reg.writes().iter().all(|w| !w.contains("resize-arm")));

    // The static aarch64 supervisor, found with no configuration.
    let o = build(dir.path(), &target, &[]);
    ok(&o);
    let image = format!("{target}@{}", stdout(&o).trim());
    assert_eq!(inspect(&image, false)["Architecture"], "arm64");
    let files = layers_files(&image);
    let release = &files[0][0];
    assert_eq!(release.0, "etc/os-release");
    assert!(
        String::from_utf8_lossy(&release.1).contains("ARCH=arm64"),
        "the arm64 image of the index is the base"
    );
    assert!(
        files[1][0].1 == supervisor_bytes("arm64"),
        "the aarch64 supervisor is inside"
    );

    // An amd64-only base for an arm64 function: refused.
    let only = push_base(&reg, "base/only-amd64", "1", &["amd64"]);
    let dir = stack(&only, "arm64", "echo hi\n");
    let o = build(dir.path(), &target, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is for amd64, the function for arm64"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_missing_base_is_an_error_naming_it() {
    let reg = Registry::start();
    let missing = format!("{}/base/nothing:1", reg.host());
    let dir = stack(&missing, "x86_64", "echo\n");
    let o = build(dir.path(), &format!("{}/scar/imgs/x", reg.host()), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("base/nothing@1") && err.contains("404"),
        "{err}"
    );
    assert!(reg.writes().is_empty(), "{:?}", reg.writes());
}

/// Stack `imgplan` with one function on `base`.
fn planned(base: &str) -> tempfile::TempDir {
    stack_named("imgplan", base, "x86_64", "echo resize\n")
}

/// The registry's writes into `repository` so far.
fn writes_into(reg: &Registry, repository: &str) -> Vec<String> {
    reg.writes()
        .into_iter()
        .filter(|w| w.contains(&format!("/v2/{repository}/")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_assembles_the_image_records_it_and_upgrades_it_declaratively() {
    let moto = Moto::start();
    let reg = shared();
    // A base of the test's own, so moving its tag touches no other test.
    let base = push_base(reg, "base/moving", "1", &["amd64"]);
    let dir = planned(&base);
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    ok(&out);
    assert!(
        stderr(&out).contains("function_image/resize: Creation complete"),
        "{}",
        stderr(&out)
    );

    // Lambda runs the image by digest, from the stack's repository.
    let sdk = moto.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let f = lambda
        .get_function()
        .function_name("resize")
        .send()
        .await
        .expect("the function exists");
    let uri = f
        .code()
        .and_then(|c| c.image_uri())
        .expect("an image URI")
        .to_owned();
    let prefix = "123456789012.dkr.ecr.us-east-1.amazonaws.com/scar/imgplan@sha256:";
    assert!(uri.starts_with(prefix), "{uri}");
    let tags = f.tags().cloned().unwrap_or_default();
    assert_eq!(
        tags.get("scar:supervisor").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        tags.get("scar:image-base").map(String::as_str),
        Some(base.as_str())
    );

    // The repository is the stack's, in ECR; the image is where ECR's registry would hold it.
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    let repo = ecr
        .describe_repositories()
        .repository_names("scar/imgplan")
        .send()
        .await
        .expect("the repository exists");
    let arn = repo.repositories()[0]
        .repository_arn()
        .expect("arn")
        .to_owned();
    let repo_tags = ecr
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .expect("tags");
    assert!(
        repo_tags
            .tags()
            .iter()
            .any(|t| t.key() == "scar:stack" && t.value() == "imgplan")
    );
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name("scar/imgplan")
        .send()
        .await
        .expect("a lifecycle policy");
    assert!(
        lifecycle
            .lifecycle_policy_text()
            .is_some_and(|p| p.contains("\"tagStatus\":\"untagged\"")),
        "replaced images expire"
    );
    let digest = uri
        .rsplit_once('@')
        .map(|(_, d)| d.to_owned())
        .expect("digest");
    let pushed = format!("{}/scar/imgplan@{digest}", reg.host());
    assert_eq!(
        inspect(&pushed, false)["Layers"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        inspect(&pushed, true)["config"]["Entrypoint"],
        serde_json::json!(["/opt/scar/bin/scar-supervisor"])
    );

    // `scar ls` reports the digest and the supervisor.
    let ls = moto.scar(dir.path(), &["ls", ".", "--json"]);
    ok(&ls);
    assert!(
        stdout(&ls).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout(&ls)
    );
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    // `scar image build` assembles exactly what apply did: same digest, nothing to push.
    let again = moto.scar(
        dir.path(),
        &[
            "image",
            "build",
            ".",
            "resize",
            "--to",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/scar/imgplan:resize",
        ],
    );
    ok(&again);
    assert_eq!(stdout(&again).trim(), digest);
    assert!(
        stderr(&again).contains("nothing to push"),
        "{}",
        stderr(&again)
    );

    // An image holding an older supervisor: the plan says so, apply rebuilds it. The image is
    // the same bytes, so nothing is sent to the registry.
    lambda
        .tag_resource()
        .resource(
            f.configuration()
                .and_then(|c| c.function_arn())
                .expect("arn"),
        )
        .tags("scar:supervisor", "0.0.9")
        .send()
        .await
        .expect("tag");
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stdout(&plan));
    assert!(
        stdout(&plan).contains(&format!(
            "~ supervisor = \"0.0.9\" -> \"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        stdout(&plan)
    );
    let before = writes_into(reg, "scar/imgplan").len();
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(
        writes_into(reg, "scar/imgplan").len(),
        before,
        "same inputs, nothing pushed: {:?}",
        writes_into(reg, "scar/imgplan")
    );
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    // The base's tag moves: a new base digest, a new image, the function moves to it.
    push_base(reg, "base/moving", "1", &["amd64", "arm64"]);
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stdout(&plan));
    assert!(
        stdout(&plan).contains("~ base_digest = \"sha256:"),
        "{}",
        stdout(&plan)
    );
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    let moved = lambda
        .get_function()
        .function_name("resize")
        .send()
        .await
        .expect("function");
    let new_uri = moved.code().and_then(|c| c.image_uri()).unwrap_or_default();
    assert!(new_uri.starts_with(prefix) && new_uri != uri, "{new_uri}");
    let plan = moto.scar(dir.path(), &["plan", ".", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));

    // Destroy removes the repository with the function.
    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
    let gone = ecr
        .describe_repositories()
        .repository_names("scar/imgplan")
        .send()
        .await;
    assert!(gone.is_err(), "the repository is deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_repository_of_that_name_stops_the_plan() {
    let moto = Moto::start();
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk().await);
    ecr.create_repository()
        .repository_name("scar/imgplan")
        .send()
        .await
        .expect("create a foreign repository");
    let dir = planned("grycap/imagemagick");
    let out = moto.scar(dir.path(), &["apply", ".", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("image_repository/scar/imgplan") && all.contains("already exists"),
        "{all}"
    );
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    assert!(
        lambda
            .get_function()
            .function_name("resize")
            .send()
            .await
            .is_err(),
        "nothing was created"
    );
    let still = ecr
        .describe_repositories()
        .repository_names("scar/imgplan")
        .send()
        .await;
    assert!(still.is_ok(), "the foreign repository is untouched");
}

/// `scar ARGS` in `dir` against moto, with `env` set.
fn scar_with(moto: &Moto, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = support::moto::scar_command(&moto.endpoint, dir, args);
    c.envs(env.iter().copied());
    c.output().expect("scar runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_without_a_usable_supervisor_writes_nothing() {
    let moto = Moto::start();
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk().await);
    let refused = |dir: &Path, env: &[(&str, &str)], want: &[&str]| {
        let plan = scar_with(&moto, dir, &["plan", ".", "--detailed-exitcode"], env);
        assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
        let all = format!("{}{}", stdout(&plan), stderr(&plan));
        assert!(
            all.contains("function_image/resize") && want.iter().all(|w| all.contains(w)),
            "{all}"
        );
        let apply = scar_with(&moto, dir, &["apply", ".", "--auto-approve"], env);
        assert_eq!(apply.status.code(), Some(1));
    };
    // No arm64 supervisor at all.
    let arm = stack_named("imgarm", "grycap/imagemagick", "arm64", "echo hi\n");
    refused(
        arm.path(),
        &[("SCAR_SUPERVISOR_ARM64", "/nonexistent/scar-supervisor")],
        &["SCAR_SUPERVISOR_ARM64"],
    );
    // A glibc supervisor: it would not start in alpine or busybox, so the plan refuses it.
    let glibc = glibc_supervisor();
    let x86 = stack_named("imgglibc", "grycap/imagemagick", "x86_64", "echo hi\n");
    refused(
        x86.path(),
        &[("SCAR_SUPERVISOR", glibc.to_str().expect("utf-8"))],
        &[
            "dynamically linked",
            "ld-linux-x86-64.so.2",
            "scripts/build-supervisor.sh",
        ],
    );
    for repo in ["scar/imgarm", "scar/imgglibc"] {
        assert!(
            ecr.describe_repositories()
                .repository_names(repo)
                .send()
                .await
                .is_err(),
            "nothing was written"
        );
    }
}

/// A hostile registry on loopback: its answers are whatever the test says. Each request is
/// answered by `answer(method, path, headers)` and recorded.
struct Hostile {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Hostile {
    /// `make` gets the server's own port and gives the answering function.
    fn start<A>(ip: &str, make: impl FnOnce(u16) -> A) -> Hostile
    where
        A: Fn(&str, &str, &str) -> Vec<u8> + Send + Sync + 'static,
    {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind((ip, 0)).expect("a loopback port");
        let port = listener.local_addr().expect("addr").port();
        let answer = make(port);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer = std::sync::Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().expect("clone");
                    let mut reader = BufReader::new(stream);
                    loop {
                        let mut head = String::new();
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if line == "\r\n" {
                                break;
                            }
                            head.push_str(&line);
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let first = head.lines().next().unwrap_or_default().to_owned();
                        let mut parts = first.split_whitespace();
                        let (method, path) =
                            (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                        if let Ok(mut l) = log.lock() {
                            l.push(head.clone());
                        }
                        let out = answer(method, path, &head.to_ascii_lowercase());
                        if writer.write_all(&out).is_err() || out.is_empty() {
                            return;
                        }
                    }
                });
            }
        });
        Hostile { port, seen }
    }
}

fn http(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_credentials_follow_an_upload_location_to_another_host() {
    // Another host (127.0.0.2 is loopback too, but another origin) records what it is sent.
    let elsewhere = Hostile::start("127.0.0.2", |_| {
        |_: &str, _: &str, _: &str| http("201 Created", &[], b"")
    });
    let other = elsewhere.port;
    let registry = Hostile::start("127.0.0.1", move |own| {
        move |method: &str, path: &str, headers: &str| match (method, path) {
            ("GET", p) if p.starts_with("/token") => {
                http("200 OK", &[], br#"{"token":"SECRET-TOKEN"}"#)
            }
            ("POST", "/v2/app/blobs/uploads/") if !headers.contains("authorization:") => http(
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    format!("Bearer realm=\"http://127.0.0.1:{own}/token\",service=\"hostile\""),
                )],
                b"",
            ),
            ("POST", "/v2/app/blobs/uploads/") => http(
                "202 Accepted",
                &[(
                    "Location",
                    format!("http://127.0.0.2:{other}/stolen/upload?x=1"),
                )],
                b"",
            ),
            _ => http("404 Not Found", &[], b""),
        }
    });
    let reg =
        scar::image::registry::Registry::new(scar::image::reference::Endpoints::default(), None)
            .expect("client");
    let image =
        scar::image::reference::ImageRef::parse(&format!("127.0.0.1:{}/app:v1", registry.port))
            .expect("reference");
    let body = b"hello".to_vec();
    let digest = scar::image::digest(&body);
    reg.upload(&image, &digest, body.len() as u64, &mut body.as_slice())
        .await
        .expect("the upload goes through, without credentials where it lands");
    let seen = elsewhere.seen.lock().expect("log").clone();
    assert!(!seen.is_empty(), "the upload did not follow the Location");
    for request in &seen {
        assert!(
            !request.to_ascii_lowercase().contains("authorization"),
            "credentials were sent to another host:\n{request}"
        );
    }
    let own = registry.seen.lock().expect("log").clone();
    assert!(
        own.iter().any(|r| r.contains("Bearer SECRET-TOKEN")),
        "the registry itself got its token: {own:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_answers_are_capped_and_realms_must_be_https() {
    let registry = Hostile::start("127.0.0.1", |_| {
        |_: &str, path: &str, _: &str| match path {
            // Announced as 300 MB; a client that believes it reads until the server stops.
            "/v2/app/manifests/huge" => http(
                "200 OK",
                &[
                    (
                        "Content-Type",
                        "application/vnd.oci.image.manifest.v1+json".into(),
                    ),
                    ("Content-Length", "314572800".into()),
                ],
                &[b'{'; 1024],
            ),
            // No length at all: the body just keeps coming, past the cap.
            "/v2/app/manifests/endless" => {
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..80 {
                    out.extend_from_slice(format!("{:x}\r\n", 65536).as_bytes());
                    out.extend_from_slice(&[b' '; 65536]);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
            "/v2/app/manifests/realm" => http(
                "401 Unauthorized",
                &[(
                    "WWW-Authenticate",
                    "Bearer realm=\"http://token.example.org/token\",service=\"x\"".into(),
                )],
                b"",
            ),
            _ => http("404 Not Found", &[], b""),
        }
    });
    let reg =
        scar::image::registry::Registry::new(scar::image::reference::Endpoints::default(), None)
            .expect("client");
    let image = |tag: &str| {
        scar::image::reference::ImageRef::parse(&format!("127.0.0.1:{}/app:{tag}", registry.port))
            .expect("reference")
    };
    for tag in ["huge", "endless"] {
        let e = reg
            .manifest(&image(tag), tag)
            .await
            .expect_err("an oversized manifest");
        assert!(e.to_string().contains("larger than"), "{tag}: {e}");
    }
    let e = reg
        .manifest(&image("realm"), "realm")
        .await
        .expect_err("a token server over plain HTTP");
    assert!(e.to_string().contains("token server"), "{e}");
}
