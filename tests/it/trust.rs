//! Issue 23's findings about paths, each reproduced through the real binary: nothing a stack
//! names (an overlay's base, the stack directory, a folder or file on the way, a script) is
//! read when it resolves outside the trust root, in folder mode and following Git.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{git, scar_in, stderr, stdout, write};

const STACK: &str = "apiVersion: scar/v1alpha1
kind: Stack
metadata:
  name: wc
spec:
  region: us-east-1
  role:
    managed: true
";

const FUNCTION: &str = "apiVersion: scar/v1alpha1
kind: Function
metadata:
  name: split
spec:
  image: busybox:1.36
  script: split.sh
  input:
    - bucket: wc-data
      prefix: in/
";

/// What the attacker wants: a file of the user's outside the repository.
const SECRET: &str = "aws_secret_access_key = do-not-leak-7f3a";

/// `$HOME/.aws/credentials` and, in `$HOME/repo`, a Git work tree holding a valid stack.
fn home_with_repo() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("home");
    write(
        home.path(),
        &[
            (".aws/credentials", SECRET),
            ("repo/stack.yaml", STACK),
            ("repo/split.yaml", FUNCTION),
            ("repo/split.sh", "tr ' ' '\\n'\n"),
        ],
    );
    std::fs::create_dir(home.path().join("repo/.git")).expect("work tree");
    home
}

/// Asserts that a command refused, naming the trust root, and showed nothing of the secret.
fn refused(o: &std::process::Output, says: &str) {
    let all = format!("{}{}", stdout(o), stderr(o));
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains(says), "{all}");
    assert!(!all.contains("do-not-leak"), "{all}");
}

#[test]
fn an_overlay_base_that_climbs_to_an_ancestor_holding_a_stack_cannot_read_home_files() {
    // Reproduced on main: `base: ../../..` is $HOME, which holds a Stack further down (the
    // repository's own), so it passed; $HOME became a root and the overlay's script
    // `../../../.aws/credentials` was inside it, so `scar plan` showed the credentials.
    let home = home_with_repo();
    let repo = home.path().join("repo");
    write(
        &repo,
        &[
            (
                "envs/dev/overlay.yaml",
                "apiVersion: scar/v1alpha1\nkind: Overlay\nmetadata:\n  name: dev\nspec:\n  base: ../../..\n",
            ),
            (
                "envs/dev/split.yaml",
                "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: split\nspec:\n  script: ../../../.aws/credentials\n",
            ),
        ],
    );
    let o = scar_in(&repo, &["validate", "envs/dev"]);
    refused(&o, "base `../../..` is outside the trust root");
    assert!(stderr(&o).contains("Git work tree"), "{}", stderr(&o));

    // A base that reaches `/`: refused at once, no folder of the host walked or quoted.
    write(
        &repo,
        &[(
            "envs/root/overlay.yaml",
            &format!(
                "apiVersion: scar/v1alpha1\nkind: Overlay\nmetadata:\n  name: root\nspec:\n  base: {}\n",
                "../".repeat(40)
            ),
        )],
    );
    let o = scar_in(&repo, &["validate", "envs/root"]);
    refused(&o, "is outside the trust root");
    assert!(!stderr(&o).contains("invalid YAML"), "{}", stderr(&o));

    // The same base inside the repository is an environment as before.
    write(
        &repo,
        &[(
            "envs/ok/overlay.yaml",
            "apiVersion: scar/v1alpha1\nkind: Overlay\nmetadata:\n  name: ok\nspec:\n  base: ../..\n  nameSuffix: -ok\n",
        )],
    );
    let o = scar_in(&repo, &["validate", "envs/ok"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_committed_link_used_as_the_stack_directory_or_met_on_the_way_is_not_followed_out() {
    // Reproduced on main: a link's target became a root of its own, so a stack planted
    // anywhere on the machine (here next to the credentials) was read, scripts and all.
    let home = home_with_repo();
    let repo = home.path().join("repo");
    write(
        home.path(),
        &[
            ("planted/stack.yaml", STACK),
            (
                "planted/split.yaml",
                &FUNCTION.replace("split.sh", "../.aws/credentials"),
            ),
            ("yaml/creds.yaml", &format!("token: [{SECRET}\n")),
        ],
    );
    std::os::unix::fs::symlink("../planted", repo.join("linked")).expect("link");
    let o = scar_in(&repo, &["validate", "linked"]);
    refused(&o, "resolves outside the trust root");

    // A folder inside the stack that is a link out: not walked, its YAML never quoted.
    std::os::unix::fs::symlink("../yaml", repo.join("more")).expect("link");
    let o = scar_in(&repo, &["validate", "."]);
    refused(&o, "is a link that leads outside the trust root");
    assert!(!stderr(&o).contains("token"), "{}", stderr(&o));

    // With the folder that holds both named as the root, the user may read there.
    std::fs::remove_file(repo.join("more")).expect("unlink");
    let o = scar_in(&repo, &["validate", "linked", "--root", ".."]);
    assert!(
        stderr(&o).contains("script `../.aws/credentials` is outside the stack directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_pushed_commit_cannot_plan_the_mirrors_own_config_through_a_link() {
    // Reproduced on main: a commit with a link climbing out of its export (`s -> ../..`),
    // used as DIR, made the cache folder holding the mirror a root; a function's script
    // `mirror.git/config` then put the remote's URL (and its token) into the plan.
    let remote = tempfile::tempdir().expect("remote");
    let r = remote.path();
    let url = r.display().to_string();
    let key = scar::model::short_hash(&format!("{url}#main"));
    write(
        r,
        &[
            ("infra/stack.yaml", STACK),
            (
                "infra/split.yaml",
                &FUNCTION.replace("split.sh", &format!("../up/mirrors/{key}.git/config")),
            ),
        ],
    );
    // Both the layout of main (`../..` from the export) and of now (`../../..`).
    std::os::unix::fs::symlink("../..", r.join("s")).expect("link");
    std::os::unix::fs::symlink("../../..", r.join("up")).expect("link");
    std::os::unix::fs::symlink("../up/mirrors", r.join("infra/chained")).expect("link");
    git(r, &["init", "--quiet", "-b", "main"]);
    git(r, &["add", "."]);
    git(r, &["commit", "--quiet", "-m", "innocent"]);
    let cache = tempfile::tempdir().expect("cache");
    for dir in ["infra", "s"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scar"))
            .args([
                "watch",
                dir,
                "--git",
                &url,
                "--poll",
                "1h",
                "--interval",
                "0",
            ])
            .current_dir(cache.path())
            .env("SCAR_CACHE_DIR", cache.path())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scar watch");
        let said = crate::support::collect_output(&mut child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !said().contains("nothing changed") {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let all = said();
        assert!(
            all.contains("run 1 found invalid manifests"),
            "{dir}: {all}"
        );
        assert!(
            all.contains("links that lead outside the commit's files are left out"),
            "{dir}: {all}"
        );
        for config in ["[remote", "bare =", "url ="] {
            assert!(!all.contains(config), "{dir}: {all}");
        }
    }
    // The export holds the commit but the links out; the mirror is outside it.
    let trees = cache.path().join("git/trees").join(&key);
    let export = std::fs::read_dir(&trees)
        .expect("trees")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("an export");
    assert!(export.join("infra/split.yaml").is_file());
    for gone in ["s", "up", "infra/chained"] {
        assert!(
            std::fs::symlink_metadata(export.join(gone)).is_err(),
            "{gone} is still there"
        );
    }
    use std::os::unix::fs::PermissionsExt as _;
    for private in ["git", "git/mirrors", "git/trees"] {
        let mode = std::fs::metadata(cache.path().join(private))
            .expect("cache folder")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{private}");
    }
    let config = cache.path().join(format!("git/mirrors/{key}.git/config"));
    let mode = std::fs::metadata(config)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
