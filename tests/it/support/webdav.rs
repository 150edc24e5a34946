//! A real WebDAV server for tests: wsgidav (from PyPI; `scripts/test.sh` installs it and sets
//! SCAR_WSGIDAV) on loopback, serving a temporary folder to one user with basic
//! authentication.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct WebDav {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    root: tempfile::TempDir,
}

/// A test certificate authority and a certificate it signed for 127.0.0.1, made with openssl.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a new authority and a server certificate for 127.0.0.1.
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("tempdir");
        let sh = |script: &str| {
            let o = Command::new("sh")
                .args(["-c", script])
                .current_dir(dir.path())
                .output()
                .expect("openssl runs (apt-get install openssl)");
            assert!(
                o.status.success(),
                "{script}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        sh(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=scar-test-ca",
        );
        sh(
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        );
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("ext");
        sh(
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf",
        );
        TestCa { dir }
    }

    /// The authority's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn server(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("server.pem"),
            self.dir.path().join("server.key"),
        )
    }
}

impl WebDav {
    /// Serves a new folder to `user` with `password`, over HTTPS with a certificate `ca` signed.
    pub fn start_tls(user: &str, password: &str, ca: &TestCa) -> WebDav {
        let (cert, key) = ca.server();
        let mut d = Self::launch(
            user,
            password,
            &format!(
                "ssl_certificate: \"{}\"\nssl_private_key: \"{}\"\n",
                cert.display(),
                key.display()
            ),
        );
        d.url = d.url.replacen("http://", "https://", 1);
        d
    }

    /// Serves a new folder to `user` with `password`.
    pub fn start(user: &str, password: &str) -> WebDav {
        Self::launch(user, password, "")
    }

    fn launch(user: &str, password: &str, extra: &str) -> WebDav {
        let bin = std::env::var_os("SCAR_WSGIDAV").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/wsgidav"),
            PathBuf::from,
        );
        assert!(
            bin.exists(),
            "wsgidav not found at {}: run ./scripts/test.sh",
            bin.display()
        );
        let root = tempfile::tempdir().expect("tempdir");
        let port = super::moto::free_port();
        let config = root.path().join("wsgidav.yaml");
        std::fs::create_dir_all(root.path().join("files")).expect("files");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {port}\nprovider_mapping:\n  \"/\": \"{}\"\nhttp_authenticator:\n  domain_controller: null\n  accept_basic: true\n  accept_digest: false\n  default_to_digest: false\nsimple_dc:\n  user_mapping:\n    \"*\":\n      \"{user}\":\n        password: \"{password}\"\nverbose: 1\nlogging:\n  enable_loggers: []\n{extra}",
                root.path().join("files").display()
            ),
        )
        .expect("config");
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("wsgidav starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "wsgidav did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        WebDav {
            child,
            url: format!("http://127.0.0.1:{port}"),
            root,
        }
    }

    /// The folder the server serves.
    pub fn files(&self) -> PathBuf {
        self.root.path().join("files")
    }

    /// The content of `path` under the served folder, if there.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(Path::new(&self.files()).join(path)).ok()
    }
}

impl Drop for WebDav {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
