//! What the operating commands (`ls`, `put`, `get`, `logs`) ask of AWS: a function's live
//! status, S3 transfers, and log events. Retried and classified like every other call.

use std::path::{Path, PathBuf};

use scar_transfer::Settings;

use super::AwsCloud;
use super::page::pages;
use crate::cloud::{CloudError, ErrorKind};

/// A function's live status, as `scar ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FunctionStatus {
    /// `Active`, `Pending`, `Inactive`, `Failed`.
    pub state: String,
    /// `Successful`, `InProgress`, `Failed`.
    pub last_update_status: String,
    /// MB.
    pub memory: i32,
    /// Seconds.
    pub timeout: i32,
    /// The image URI the function was given.
    pub image: String,
    /// The image digest Lambda resolved (`sha256:...`), if known.
    pub digest: Option<String>,
    /// The supervisor version recorded on the function, if any.
    pub supervisor: Option<String>,
    /// When it last changed (ISO 8601, as Lambda says).
    pub last_modified: String,
    /// Since when `scar pause` holds it (RFC 3339); `None` when it is not paused.
    pub paused: Option<String>,
}

/// One log event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEvent {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The log stream.
    pub stream: String,
    /// The message.
    pub message: String,
}

/// Which credentials a function run here (`--local`) gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LocalCredentials {
    /// Its role's, when they may be had; else short-lived ones of yours.
    Auto,
    /// Short-lived ones of yours (your session's, or `sts:GetSessionToken`'s).
    Session,
    /// Yours as they are, long-term keys included.
    LongTerm,
}

/// How long the short-lived credentials a function run here gets last, in seconds.
const LOCAL_CREDENTIALS_SECONDS: i32 = 3600;

/// Credentials as a process's environment.
fn keys(id: &str, secret: &str, token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), id.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), secret.to_owned()),
    ];
    if let Some(t) = token {
        env.push(("AWS_SESSION_TOKEN".to_owned(), t.to_owned()));
    }
    env
}

/// STS's credentials as a process's environment.
fn from_sts(c: Option<&aws_sdk_sts::types::Credentials>) -> Option<Vec<(String, String)>> {
    c.map(|c| {
        keys(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
    })
}

impl AwsCloud {
    /// The credentials and endpoints a function run here gets, as environment variables, and
    /// a sentence saying whose they are.
    ///
    /// [`LocalCredentials::Auto`] gives the function `role`'s credentials (an hour of
    /// `sts:AssumeRole`, as Lambda gives a function its execution role's) when this identity
    /// may assume it, else short-lived credentials of this identity: the session it already
    /// has, or an hour of `sts:GetSessionToken`. [`LocalCredentials::Session`] skips the role.
    /// Long-term keys reach a function only with [`LocalCredentials::LongTerm`].
    ///
    /// # Errors
    /// When there are no credentials, or short-lived ones cannot be had (the message says to
    /// give `--credentials long-term` on purpose).
    pub async fn function_environment(
        &self,
        mode: LocalCredentials,
        role: Option<&str>,
        session_name: &str,
    ) -> Result<(Vec<(String, String)>, String), CloudError> {
        use aws_sdk_s3::config::ProvideCredentials as _;
        let provider = self.credentials.as_ref().ok_or_else(|| {
            CloudError::new(
                ErrorKind::Other,
                "credentials",
                "no AWS credentials are configured (a function run here gets the stack's credentials)",
            )
        })?;
        let c = provider
            .provide_credentials()
            .await
            .map_err(|e| CloudError::new(ErrorKind::Other, "credentials", e.to_string()))?;
        let session_name: String = session_name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(*c))
            .take(64)
            .collect();
        let (mut env, said) = match (mode, role) {
            (LocalCredentials::LongTerm, _) => (
                keys(c.access_key_id(), c.secret_access_key(), c.session_token()),
                "functions run here with your own credentials (--credentials long-term)".to_owned(),
            ),
            (LocalCredentials::Auto, Some(role)) => {
                let assumed = self
                    .call(role, "sts:AssumeRole", || {
                        self.sts
                            .assume_role()
                            .role_arn(role)
                            .role_session_name(&session_name)
                            .duration_seconds(LOCAL_CREDENTIALS_SECONDS)
                            .send()
                    })
                    .await;
                match assumed.map(|o| from_sts(o.credentials())) {
                    Ok(Some(env)) => (
                        env,
                        format!(
                            "functions run here with the credentials of their role {role}, for an hour, as in Lambda"
                        ),
                    ),
                    Ok(None) | Err(_) => self.session_credentials(&c, Some(role)).await?,
                }
            }
            (LocalCredentials::Auto | LocalCredentials::Session, _) => {
                self.session_credentials(&c, None).await?
            }
        };
        env.extend(
            std::env::vars().filter(|(k, v)| k.starts_with("AWS_ENDPOINT_URL_") && !v.is_empty()),
        );
        if let Some(e) = &self.endpoint {
            env.push(("AWS_ENDPOINT_URL".to_owned(), e.clone()));
        }
        Ok((env, said))
    }

    /// Short-lived credentials of this identity: the session it has, or an hour of
    /// `sts:GetSessionToken` for long-term keys.
    async fn session_credentials(
        &self,
        c: &aws_credential_types::Credentials,
        role: Option<&str>,
    ) -> Result<(Vec<(String, String)>, String), CloudError> {
        let not_role = role
            .map(|r| format!(" (role {r} could not be assumed)"))
            .unwrap_or_default();
        if let Some(token) = c.session_token() {
            return Ok((
                keys(c.access_key_id(), c.secret_access_key(), Some(token)),
                format!("functions run here with your session's short-lived credentials{not_role}"),
            ));
        }
        let got = self
            .call("session", "sts:GetSessionToken", || {
                self.sts
                    .get_session_token()
                    .duration_seconds(LOCAL_CREDENTIALS_SECONDS)
                    .send()
            })
            .await
            .map_err(|e| {
                CloudError::new(
                    e.kind,
                    "sts:GetSessionToken",
                    format!("{}; short-lived credentials for the functions could not be had: give `--credentials long-term` to hand them your own keys", e.message),
                )
            })?;
        let env = from_sts(got.credentials()).ok_or_else(|| {
            CloudError::new(
                ErrorKind::Other,
                "sts:GetSessionToken",
                "no credentials in the answer",
            )
        })?;
        Ok((
            env,
            format!(
                "functions run here with short-lived credentials of yours (sts:GetSessionToken, an hour){not_role}"
            ),
        ))
    }

    /// The live status of function `name`; `None` when it does not exist.
    ///
    /// # Errors
    /// When Lambda fails.
    pub async fn function_status(&self, name: &str) -> Result<Option<FunctionStatus>, CloudError> {
        let Some(out) = self.get_function(name).await? else {
            return Ok(None);
        };
        let Some(c) = out.configuration() else {
            return Ok(None);
        };
        let code = out.code();
        let resolved = code
            .and_then(|c| c.resolved_image_uri())
            .unwrap_or_default();
        Ok(Some(FunctionStatus {
            state: c.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            last_update_status: c
                .last_update_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            memory: c.memory_size().unwrap_or_default(),
            timeout: c.timeout().unwrap_or_default(),
            image: code
                .and_then(|c| c.image_uri())
                .unwrap_or_default()
                .to_owned(),
            digest: resolved.split_once('@').map(|(_, d)| d.to_owned()),
            supervisor: c
                .environment()
                .and_then(|e| e.variables())
                .and_then(|v| v.get("SCAR_SUPERVISOR_VERSION").cloned())
                .or_else(|| out.tags().and_then(|t| t.get("scar:supervisor").cloned())),
            last_modified: c.last_modified().unwrap_or_default().to_owned(),
            paused: crate::model::pause::Hold::read(&super::pause::function_tags(&out))
                .map(|h| h.since),
        }))
    }

    /// Uploads the file at `path` to `s3://bucket/key`, streamed from disk (in parts above
    /// 8 MiB), the whole transfer tried again after a transient failure.
    ///
    /// # Errors
    /// When the file cannot be read or S3 refuses.
    pub async fn upload_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<(), CloudError> {
        crate::cloud::retry::with_retry(self.backoff, key, || async {
            scar_transfer::upload(&self.s3, bucket, key, path, &[], Settings::default())
                .await
                .map(|_| ())
                .map_err(|e| transfer_failed("s3:PutObject", e))
        })
        .await
    }

    /// The bytes of `s3://bucket/key`, refused when larger than `max` (read no further).
    ///
    /// # Errors
    /// When S3 fails, or the object is larger than `max`.
    pub async fn read_object(
        &self,
        bucket: &str,
        key: &str,
        max: usize,
    ) -> Result<Vec<u8>, CloudError> {
        let out = self
            .call(key, "s3:GetObject", || {
                self.s3.get_object().bucket(bucket).key(key).send()
            })
            .await?;
        let too_big = || {
            CloudError::new(
                ErrorKind::Invalid,
                "s3:GetObject",
                format!("s3://{bucket}/{key} is larger than {max} bytes"),
            )
        };
        if out
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| n > max)
        {
            return Err(too_big());
        }
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                CloudError::new(ErrorKind::Transient, "s3:GetObject", e.to_string())
            })?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() > max {
                return Err(too_big());
            }
        }
        Ok(bytes)
    }

    /// Writes `bytes` to `s3://bucket/key` as JSON, tried again after a transient failure.
    ///
    /// # Errors
    /// When S3 refuses.
    pub async fn put_json(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<(), CloudError> {
        self.call(key, "s3:PutObject", || {
            self.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/json")
                .body(aws_sdk_s3::primitives::ByteStream::from(bytes.clone()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// Deletes `s3://bucket/key`; one already gone is fine.
    ///
    /// # Errors
    /// When S3 refuses.
    pub async fn delete_key(&self, bucket: &str, key: &str) -> Result<(), CloudError> {
        let r = self
            .call(key, "s3:DeleteObject", || {
                self.s3.delete_object().bucket(bucket).key(key).send()
            })
            .await;
        match r {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The keys (and sizes) under `s3://bucket/prefix`, every page.
    ///
    /// # Errors
    /// When S3 fails.
    pub async fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<(String, i64)>, CloudError> {
        let pages = pages(
            "s3:ListObjectsV2",
            |token| async move {
                self.call(bucket, "s3:ListObjectsV2", || {
                    self.s3
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                })
                .await
            },
            |page| page.next_continuation_token(),
        )
        .await?;
        Ok(pages
            .iter()
            .flat_map(|p| p.contents())
            .filter_map(|o| Some((o.key()?.to_owned(), o.size().unwrap_or(0))))
            .collect())
    }

    /// Downloads `s3://bucket/key` to `path` (its folders made as needed), streamed to disk
    /// (in ranged parts above 16 MiB), the whole transfer tried again after a transient
    /// failure.
    ///
    /// # Errors
    /// When S3 fails or the file cannot be written.
    pub async fn download_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
    ) -> Result<(), CloudError> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                CloudError::new(
                    ErrorKind::Invalid,
                    "write",
                    format!("{}: {e}", dir.display()),
                )
            })?;
        }
        crate::cloud::retry::with_retry(self.backoff, key, || async {
            scar_transfer::download(&self.s3, bucket, key, path, Settings::default())
                .await
                .map(|_| ())
                .map_err(|e| transfer_failed("s3:GetObject", e))
        })
        .await
    }

    /// Log events of `group` from `start` (ms since the epoch), matching `pattern`, every page.
    /// A group that does not exist yet has no events.
    ///
    /// # Errors
    /// When CloudWatch Logs fails.
    pub async fn log_events(
        &self,
        group: &str,
        stream_prefix: Option<&str>,
        start: i64,
        pattern: Option<&str>,
    ) -> Result<Vec<LogEvent>, CloudError> {
        let read = pages(
            "logs:FilterLogEvents",
            |token| async move {
                self.call(group, "logs:FilterLogEvents", || {
                    self.logs
                        .filter_log_events()
                        .log_group_name(group)
                        .set_log_stream_name_prefix(stream_prefix.map(str::to_owned))
                        .start_time(start)
                        .set_filter_pattern(pattern.map(str::to_owned))
                        .set_next_token(token.clone())
                        .send()
                })
                .await
            },
            |page| page.next_token(),
        )
        .await;
        let pages = match read {
            Ok(p) => p,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(pages
            .iter()
            .flat_map(|p| p.events())
            .map(|e| LogEvent {
                timestamp: e.timestamp().unwrap_or_default(),
                stream: e.log_stream_name().unwrap_or_default().to_owned(),
                message: e.message().unwrap_or_default().trim_end().to_owned(),
            })
            // Checked here too: an emulator may ignore the prefix (moto does).
            .filter(|e| stream_prefix.is_none_or(|p| e.stream.starts_with(p)))
            .collect())
    }
}

/// What a Lambda invocation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// HTTP status of the invocation (200 sync, 202 async).
    pub status: i32,
    /// `Handled`/`Unhandled` when the function failed.
    pub function_error: Option<String>,
    /// The response payload.
    pub payload: Vec<u8>,
    /// Lambda's request id of the invocation, when it answered one.
    pub request_id: Option<String>,
}

impl AwsCloud {
    /// Invokes function `name` with `payload`, synchronously or (`asynchronous`) as an event.
    ///
    /// # Errors
    /// When Lambda refuses the invocation (a failing function is not an error: see
    /// [`Invoked::function_error`]).
    pub async fn invoke(
        &self,
        name: &str,
        payload: &[u8],
        asynchronous: bool,
    ) -> Result<Invoked, CloudError> {
        let kind = if asynchronous {
            aws_sdk_lambda::types::InvocationType::Event
        } else {
            aws_sdk_lambda::types::InvocationType::RequestResponse
        };
        // An invocation is not idempotent: after a 5xx or a lost answer the function may
        // have run, so only throttling (which means it did not) is retried.
        let mut attempt = 1;
        let out = loop {
            let r = self
                .lambda
                .invoke()
                .function_name(name)
                .invocation_type(kind.clone())
                .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_vec()))
                .send()
                .await
                .map_err(|e| super::classify("lambda:Invoke", &e));
            match r {
                Err(e) if e.kind == ErrorKind::Throttled && attempt < self.backoff.attempts => {
                    tracing::warn!(
                        function = name,
                        attempt,
                        "throttled; retrying the invocation"
                    );
                    tokio::time::sleep(self.backoff.delay(attempt)).await;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        use aws_sdk_lambda::operation::RequestId as _;
        Ok(Invoked {
            request_id: out.request_id().map(str::to_owned),
            status: out.status_code(),
            function_error: out.function_error().map(str::to_owned),
            payload: out
                .payload()
                .map(|p| p.as_ref().to_vec())
                .unwrap_or_default(),
        })
    }
}

/// A transfer's failure as a cloud error, retried when transient.
fn transfer_failed(op: &str, e: scar_transfer::TransferError) -> CloudError {
    let kind = if e.not_found {
        ErrorKind::NotFound
    } else if e.local {
        ErrorKind::Invalid
    } else if e.transient {
        ErrorKind::Transient
    } else {
        ErrorKind::Other
    };
    CloudError::new(kind, if e.local { "file" } else { op }, e.message)
}
/// Every file under `path` (or `path` itself), with the key suffix it gets: the path
/// relative to the folder given, or the file's name.
///
/// # Errors
/// When a folder cannot be read.
pub fn files_to_put(path: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![(path.to_path_buf(), name)]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(path)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((p, rel));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads `files` (a path, and its name relative to what was given) to the input `target`,
/// under its prefix, one after the other; `done` hears each (its index, path and
/// `s3://` URI). Returns the keys written; the first failure stops it.
///
/// # Errors
/// The first file that could not be uploaded, and why.
pub async fn upload_files(
    cloud: &AwsCloud,
    target: &crate::manifest::types::S3Input,
    files: &[(PathBuf, String)],
    done: impl Fn(usize, &Path, &str),
) -> Result<Vec<String>, (PathBuf, crate::cloud::CloudError)> {
    let prefix = target.prefix.as_deref().unwrap_or_default();
    let mut keys = Vec::new();
    for (i, (path, rel)) in files.iter().enumerate() {
        let key = format!("{prefix}{rel}");
        cloud
            .upload_file(&target.bucket, &key, path)
            .await
            .map_err(|e| (path.clone(), e))?;
        done(i, path, &format!("s3://{}/{key}", target.bucket));
        keys.push(key);
    }
    Ok(keys)
}
