//! Environments (overlays) against moto: the wordcount example's dev and prod overlays,
//! planned and applied side by side (prod in another region), each touching only its own
//! resources; and a bad value shown at the overlay's line.

use std::path::Path;

use crate::support::moto::{Moto, copy_dir, s3};
use crate::support::{ok, stderr, stdout};

/// The wordcount example with its environments, on the test registry's busybox.
fn example(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/wordcount");
    copy_dir(&src, dir);
    // In a repository, as it would be: the work tree is the trust root the overlays' base
    // (`../..`) is inside.
    let init = std::process::Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(dir)
        .status()
        .expect("git");
    assert!(init.success());
    let image = crate::runtime::push_busybox_base();
    for f in ["split.yaml", "count.yaml"] {
        let p = dir.join(f);
        let text = std::fs::read_to_string(&p).expect("manifest");
        std::fs::write(&p, text.replace("busybox:1.36", &image)).expect("write");
    }
}

async fn memory(moto: &Moto, region: &str, function: &str) -> Option<i32> {
    let config = aws_sdk_lambda::config::Builder::from(&moto.sdk().await)
        .region(aws_sdk_lambda::config::Region::new(region.to_owned()))
        .build();
    aws_sdk_lambda::Client::from_conf(config)
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .ok()
        .and_then(|c| c.memory_size)
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_and_prod_overlays_apply_side_by_side_without_touching_each_other() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    example(d);

    for env in ["envs/dev", "envs/prod"] {
        ok(&moto.scar(d, &["apply", env, "--auto-approve"]));
    }
    // Each environment's own names, region and values.
    assert_eq!(
        memory(&moto, "us-east-1", "wordcount-count-dev").await,
        Some(256)
    );
    assert_eq!(
        memory(&moto, "eu-west-1", "wordcount-count-prod").await,
        Some(512)
    );
    assert_eq!(
        memory(&moto, "us-east-1", "wordcount-count-prod").await,
        None
    );
    assert_eq!(
        memory(&moto, "us-east-1", "wordcount-count").await,
        None,
        "not the base's"
    );
    let buckets: Vec<String> = s3(&moto.sdk().await)
        .list_buckets()
        .send()
        .await
        .expect("buckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .filter(|b| b.starts_with("scar-wordcount-demo"))
        .collect();
    assert_eq!(
        buckets,
        ["scar-wordcount-demo-dev", "scar-wordcount-demo-prod"]
    );

    // Neither plan sees the other's resources: both are at rest.
    for env in ["envs/dev", "envs/prod"] {
        let plan = moto.scar(d, &["plan", env, "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{env}: {}", stdout(&plan));
    }
    let output = moto.scar(d, &["output", "envs/prod", "function/wordcount-split-prod"]);
    ok(&output);
    assert!(
        stdout(&output).contains("arn:aws:lambda:eu-west-1:"),
        "{}",
        stdout(&output)
    );

    // A prod-only change plans in prod alone.
    let patch = d.join("envs/prod/count.yaml");
    let text = std::fs::read_to_string(&patch).expect("read");
    std::fs::write(&patch, text.replace("memory: 512", "memory: 1024")).expect("write");
    let dev = moto.scar(d, &["plan", "envs/dev", "--detailed-exitcode"]);
    assert_eq!(dev.status.code(), Some(0), "{}", stdout(&dev));
    let prod = stdout(&moto.scar(d, &["plan", "envs/prod"]));
    assert!(
        prod.contains("function/wordcount-count-prod will be updated")
            && prod.contains("memory = 512 -> 1024")
            && prod.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{prod}"
    );

    // Destroying dev leaves prod whole.
    ok(&moto.scar(d, &["destroy", "envs/dev", "--auto-approve"]));
    assert_eq!(
        memory(&moto, "us-east-1", "wordcount-count-dev").await,
        None
    );
    assert_eq!(
        memory(&moto, "eu-west-1", "wordcount-count-prod").await,
        Some(512)
    );

    // A bad value in the overlay is shown at the overlay's file and line; nothing is called.
    std::fs::write(&patch, text.replace("memory: 512", "memory: lots")).expect("write");
    let bad = moto.scar(d, &["plan", "envs/prod"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("envs/prod/count.yaml:7:11") && stderr(&bad).contains("spec.memory"),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_stack_name_in_two_regions_cannot_take_over_the_global_role() {
    // Regression (issue 23, finding 6): the managed role `scar-<stack>-exec` is global while
    // locks are per region. A stack of the same name applied in another region planned to
    // rewrite the first region's role (two watchers would undo each other for ever) and its
    // destroy deleted it. Now the role records its region; the other region's plan is an
    // error, its destroy leaves the role, and an overlay that moves a stack to another region
    // under the same name is refused at validation.
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    example(d);
    ok(&moto.scar(d, &["apply", ".", "--auto-approve"]));
    let iam = aws_sdk_iam::Client::new(&moto.sdk().await);
    let role = |name: &'static str| {
        let iam = iam.clone();
        async move { iam.get_role().role_name(name).send().await }
    };
    let tags = role("scar-wordcount-exec")
        .await
        .expect("the role")
        .role()
        .map(|r| r.tags().to_vec())
        .unwrap_or_default();
    assert!(
        tags.iter()
            .any(|t| t.key() == "scar:region" && t.value() == "us-east-1"),
        "{tags:?}"
    );

    // The same stack, named the same, in eu-west-1.
    let other = tempfile::tempdir().expect("tempdir");
    let o = other.path();
    example(o);
    let stack = o.join("stack.yaml");
    let text = std::fs::read_to_string(&stack).expect("stack");
    std::fs::write(
        &stack,
        text.replace("region: us-east-1", "region: eu-west-1"),
    )
    .expect("write");
    let plan = moto.scar(o, &["plan", "."]);
    assert_eq!(plan.status.code(), Some(1), "{}", stdout(&plan));
    let said = format!("{}{}", stdout(&plan), stderr(&plan));
    assert!(
        said.contains("iam_role/scar-wordcount-exec")
            && said.contains("belongs to the stack `wordcount` of region us-east-1"),
        "{said}"
    );
    ok(&moto.scar(o, &["destroy", ".", "--auto-approve"]));
    assert!(
        role("scar-wordcount-exec").await.is_ok(),
        "the other region's destroy deleted the role"
    );

    // An overlay that moves the stack to another region without renaming it.
    let moved = d.join("envs/eu");
    std::fs::create_dir_all(&moved).expect("mkdir");
    std::fs::write(
        moved.join("overlay.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Overlay\nmetadata:\n  name: eu\nspec:\n  base: ../..\n",
    )
    .expect("overlay");
    std::fs::write(
        moved.join("stack.yaml"),
        "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: wordcount\nspec:\n  region: eu-west-1\n",
    )
    .expect("patch");
    let bad = moto.scar(d, &["validate", "envs/eu"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad)
            .contains("moves stack `wordcount` from us-east-1 to eu-west-1 under the same name")
            && stderr(&bad).contains("envs/eu/stack.yaml:6:11"),
        "{}",
        stderr(&bad)
    );
}
