//! The acceptance test of a whole example stack, as Terraform providers run theirs with
//! `TF_ACC`: with `SCAR_ACC=1` it deploys `manifests/wordcount` (renamed, so it touches nothing
//! else) to the real AWS account the environment's credentials name, drops a text into its
//! input, waits for the second stage's output, checks it, destroys the stack and deletes the
//! bucket it made. Without the variable the same steps run here: the stack applied to moto,
//! the input run through both stages with `scar run --local`, each inside its image.
//!
//! A maintainer runs it with `SCAR_ACC=1 AWS_PROFILE=... AWS_REGION=eu-west-1 cargo test --test it
//! acceptance -- --nocapture` (docs/local.md, "The acceptance test"): it needs Docker Hub
//! (the `busybox:1.36` base) and the permissions `scar policy` prints. It costs under a cent.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::moto::{Moto, scar_command};
use crate::support::registry::{push_image, shared};
use crate::support::rootfs::{Entry, layer};
use crate::support::{ok, stdout};

const POEM: &str = "The woods are lovely, dark and deep,\nBut I have promises to keep,\nAnd miles to go before I sleep,\nAnd miles to go before I sleep.\n";

/// Where the stack runs.
enum Target {
    /// A real account, through the environment's credentials.
    Aws { region: String },
    /// moto, and the functions here.
    Local(Moto),
}

impl Target {
    fn scar(&self, dir: &Path, args: &[&str]) -> Output {
        match self {
            Target::Aws { .. } => Command::new(env!("CARGO_BIN_EXE_scar"))
                .args(args)
                .current_dir(dir)
                .env("NO_COLOR", "1")
                .env_remove("AWS_ENDPOINT_URL")
                .env_remove("SCAR_REGISTRY_ENDPOINTS")
                .output()
                .expect("scar runs"),
            Target::Local(moto) => scar_command(&moto.endpoint, dir, args)
                .output()
                .expect("scar runs"),
        }
    }
}

/// The wordcount example, renamed after `id`, in `dir`; `image` replaces its base.
fn example(dir: &Path, id: &str, region: &str, image: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/wordcount");
    crate::support::moto::copy_dir(&src, dir);
    for f in ["stack.yaml", "split.yaml", "count.yaml", "workflow.yaml"] {
        let p = dir.join(f);
        let text = std::fs::read_to_string(&p).expect("manifest");
        let text = text
            .replace("scar-wordcount-demo", &format!("scar-acc-{id}"))
            .replace("wordcount-", &format!("acc{id}-"))
            .replace("name: wordcount", &format!("name: acc{id}"))
            .replace("region: us-east-1", &format!("region: {region}"))
            .replace("busybox:1.36", image);
        std::fs::write(&p, text).expect("manifest");
    }
}

/// A busybox image as Docker Hub has it (every applet), pushed to the local registry.
fn local_busybox() -> String {
    let busybox = "/bin/busybox";
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut entries = vec![Entry::file(
        "bin/busybox",
        &std::fs::read(busybox).expect("busybox-static"),
        0o755,
    )];
    for a in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if a != "busybox" {
            entries.push(Entry::Symlink(format!("bin/{a}"), "busybox".into()));
        }
    }
    push_image(
        shared(),
        "library/busybox-acc",
        "1.36",
        "amd64",
        &[layer(&entries)],
        json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]}),
    )
}

/// Empties and deletes `bucket` in the real account.
fn delete_bucket(bucket: &str) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let s3 = aws_sdk_s3::Client::new(&config);
        let listed = s3.list_objects_v2().bucket(bucket).send().await;
        for o in listed.iter().flat_map(|l| l.contents()) {
            if let Some(k) = o.key() {
                let _ = s3.delete_object().bucket(bucket).key(k).send().await;
            }
        }
        let _ = s3.delete_bucket().bucket(bucket).send().await;
    });
}

#[test]
fn the_wordcount_example_runs_end_to_end() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let id = format!("{:x}", std::process::id() ^ nanos);
    let dir = tempfile::tempdir().expect("dir");
    let stack = dir.path().join("stack");
    let target = match std::env::var("SCAR_ACC").as_deref() {
        Ok("1") => Target::Aws {
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        },
        _ => Target::Local(Moto::start()),
    };
    let (region, image) = match &target {
        Target::Aws { region } => (region.clone(), "busybox:1.36".to_owned()),
        Target::Local(_) => ("us-east-1".to_owned(), local_busybox()),
    };
    example(&stack, &id, &region, &image);
    let poem = dir.path().join("poem.txt");
    std::fs::write(&poem, POEM).expect("input");
    let poem = poem.to_string_lossy().into_owned();
    let (split, count) = (format!("acc{id}-split"), format!("acc{id}-count"));

    ok(&target.scar(&stack, &["apply", ".", "--auto-approve"]));
    match &target {
        // S3 starts the first stage, whose output starts the second, in Lambda.
        Target::Aws { .. } => ok(&target.scar(&stack, &["put", ".", &split, &poem])),
        // Both stages here, inside their images.
        Target::Local(_) => ok(&target.scar(&stack, &["run", ".", "--local", "--input", &poem])),
    }
    let got = dir.path().join("counts");
    let got_s = got.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    let counted = loop {
        let get = target.scar(&stack, &["get", ".", &count, "--to", &got_s, "--overwrite"]);
        if let Ok(text) = std::fs::read_to_string(got.join("poem.txt")) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no output within 5 minutes: {}",
            stdout(&get)
        );
        std::thread::sleep(Duration::from_secs(5));
    };
    let destroyed = target.scar(&stack, &["destroy", ".", "--auto-approve"]);
    if let Target::Aws { .. } = &target {
        // scar keeps buckets; this one the test made.
        delete_bucket(&format!("scar-acc-{id}"));
    }
    ok(&destroyed);
    let lines: Vec<&str> = counted.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"2 sleep") && lines.contains(&"3 and") && lines.len() == 10,
        "{counted}"
    );
}
