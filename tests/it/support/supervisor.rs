//! scar-supervisor from tests: the static binary `scripts/build-supervisor.sh` made (the very
//! one scar puts into images, found as scar finds it), run in local mode with the
//! configuration `scar image config` prints for a function of a stack written by the test.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// The static supervisor for `arch` (`amd64`, `arm64`), checked as scar checks it.
pub fn binary(arch: &str) -> PathBuf {
    let arch = scar::image::Arch::from_oci(arch).unwrap_or_else(|| panic!("no arch {arch}"));
    scar::image::supervisor::find(arch)
        .unwrap_or_else(|e| panic!("{e}\n(run scripts/build-supervisor.sh; scripts/test.sh does)"))
}

/// A stack folder (stack `local`) whose functions the tests write.
pub struct Stack {
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// A stack with `spec` lines added under the Stack's `spec:` (two spaces in).
    pub fn new(spec: &str) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("stack.yaml"),
            format!(
                "apiVersion: scar/v1alpha1\nkind: Stack\nmetadata:\n  name: local\nspec:\n  region: us-east-1\n  role:\n    arn: arn:aws:iam::123456789012:role/scar-tests\n{spec}"
            ),
        )
        .expect("stack.yaml");
        Stack { dir }
    }

    /// Writes function `name` with `spec` lines (two spaces in) and `script`.
    pub fn function(&self, name: &str, spec: &str, script: &str) {
        std::fs::write(
            self.dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: scar/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  image: alpine:3.20\n  script: {name}.sh\n{spec}"
            ),
        )
        .expect("function yaml");
        std::fs::write(self.dir.path().join(format!("{name}.sh")), script).expect("script");
    }

    /// The supervisor configuration of function `name`, from `scar image config`.
    pub fn config(&self, name: &str) -> Value {
        let o = super::scar_in(self.dir.path(), &["image", "config", ".", name]);
        super::ok(&o);
        serde_json::from_slice(&o.stdout).expect("scar image config prints JSON")
    }
}

/// The environment a supervisor gets to reach `endpoint` (moto) with dummy credentials.
pub fn aws_env(c: &mut Command, endpoint: &str) {
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("AWS_PROFILE")
        .env_remove("SCAR_CONFIG")
        .env_remove("SCAR_LOG");
}

/// Runs the supervisor in local mode on `event` with `config`, against `endpoint`; answers
/// its output and its JSON response.
pub fn local(
    endpoint: &str,
    config: &Value,
    event: &Value,
    env: &[(&str, &str)],
) -> (Output, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (e, c) = (
        dir.path().join("event.json"),
        dir.path().join("function.json"),
    );
    std::fs::write(&e, event.to_string()).expect("event");
    std::fs::write(&c, config.to_string()).expect("config");
    let mut cmd = Command::new(binary("amd64"));
    cmd.arg("--event").arg(&e).arg("--config").arg(&c);
    cmd.args(["--request-id", "req-1"]).current_dir(dir.path());
    aws_env(&mut cmd, endpoint);
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("scar-supervisor runs");
    let response = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.stdout).into_owned()));
    (out, response)
}

/// Text of a process's stderr.
pub fn log(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
