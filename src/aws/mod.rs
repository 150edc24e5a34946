//! The AWS adapter, on the official SDK for Rust: one module per service (`lambda`, `s3`,
//! `iam`, `logs`, `batch`, `http` for API Gateway, `image` for ECR), each with its reads, its
//! writes and its conversions; [`refresh`] reads live state and [`execute`] carries out
//! plan steps. Every call is rate limited where AWS sets a quota, retried with backoff on
//! throttling and transient failures, and classified into a [`CloudError`].

mod batch;
mod classify;
mod execute;
mod http;
mod iam;
mod image;
mod kind;
mod lambda;
mod lock;
mod logs;
mod network;
mod ops;
mod owner;
mod page;
mod pause;
mod refresh;
mod s3;
mod sqs;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::cloud::limit::Limits;
use crate::cloud::retry::Backoff;
use crate::cloud::{CloudError, ErrorKind, Settings};

pub use batch::FailedJob;
pub use classify::classify;
pub use kind::found;
pub use lock::{HeldLock, LockError};
pub use ops::{FunctionStatus, Invoked, LocalCredentials, LogEvent, files_to_put, upload_files};
pub use pause::Deployed;
pub use sqs::Message;

/// Clients for every service a stack touches, and the run's limits.
pub struct AwsCloud {
    lambda: aws_sdk_lambda::Client,
    batch: aws_sdk_batch::Client,
    apigateway: aws_sdk_apigateway::Client,
    ecr: aws_sdk_ecr::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    iam: aws_sdk_iam::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    sts: aws_sdk_sts::Client,
    tagging: aws_sdk_resourcegroupstagging::Client,
    limits: Limits,
    backoff: Backoff,
    region: String,
    /// Notification configurations are read-merge-written whole: one writer per bucket.
    bucket_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The credentials' account, read once.
    account: tokio::sync::OnceCell<String>,
    /// How long a Lambda function may take to become ready after a change.
    pub ready_timeout: Duration,
    /// How long a Batch compute environment or job queue may take to settle.
    pub batch_timeout: Duration,
    /// The credentials the connection signs with (handed to functions run here).
    credentials: Option<aws_sdk_s3::config::SharedCredentialsProvider>,
    /// The endpoint every service is reached at, when one is set (an emulator).
    endpoint: Option<String>,
    /// The registry client, made on first use.
    registry: std::sync::OnceLock<Arc<crate::image::registry::Registry>>,
    /// Outputs of resources created during this run (an API's id), for the steps after.
    created: Mutex<HashMap<crate::model::Address, serde_json::Map<String, serde_json::Value>>>,
}

impl std::fmt::Debug for AwsCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCloud")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsCloud {
    /// Loads the standard AWS configuration (credential chain, profile, `AWS_ENDPOINT_URL`),
    /// overridden by `settings`, for `region`.
    pub async fn connect(settings: &Settings, region: &str) -> Self {
        let region = settings.region.clone().unwrap_or_else(|| region.to_owned());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.clone()))
            // scar retries itself (cloud::retry), logging each retry.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(e) = &settings.endpoint {
            loader = loader.endpoint_url(e);
        }
        let shared = loader.load().await;
        // An S3-compatible server (an emulator, MinIO) is addressed by path, whether it serves
        // every service (`AWS_ENDPOINT_URL`) or S3 alone (`AWS_ENDPOINT_URL_S3`).
        let own_s3 = shared.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(own_s3)
            .build();
        Self {
            lambda: aws_sdk_lambda::Client::new(&shared),
            batch: aws_sdk_batch::Client::new(&shared),
            apigateway: aws_sdk_apigateway::Client::new(&shared),
            ecr: aws_sdk_ecr::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(&shared),
            iam: aws_sdk_iam::Client::new(&shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(&shared),
            sts: aws_sdk_sts::Client::new(&shared),
            tagging: aws_sdk_resourcegroupstagging::Client::new(&shared),
            limits: Limits::default(),
            backoff: Backoff::default(),
            region,
            bucket_locks: Mutex::new(HashMap::new()),
            account: tokio::sync::OnceCell::new(),
            ready_timeout: Duration::from_secs(600),
            batch_timeout: Duration::from_secs(1200),
            credentials: shared.credentials_provider(),
            endpoint: shared.endpoint_url().map(str::to_owned),
            registry: std::sync::OnceLock::new(),
            created: Mutex::new(HashMap::new()),
        }
    }

    /// The run's registry client, whose ECR credentials come from this connection. One per
    /// run: images built at once share its knowledge of what each repository holds, and never
    /// upload the same blob twice.
    ///
    /// # Errors
    /// When `SCAR_REGISTRY_ENDPOINTS` is malformed or TLS roots cannot be loaded.
    pub fn registry(&self) -> Result<Arc<crate::image::registry::Registry>, String> {
        if let Some(r) = self.registry.get() {
            return Ok(r.clone());
        }
        let endpoints = crate::image::reference::Endpoints::from_env()?;
        let made = crate::image::registry::Registry::new(endpoints, Some(self.ecr.clone()))
            .map_err(|e| e.to_string())?;
        Ok(self.registry.get_or_init(|| Arc::new(made)).clone())
    }

    /// The region.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account the credentials belong to.
    ///
    /// # Errors
    /// When STS cannot be reached or refuses.
    pub async fn account_id(&self) -> Result<String, CloudError> {
        // Asked once per run: refresh, apply and adopt all need it.
        self.account
            .get_or_try_init(|| async {
                let out = self
                    .call("account", "sts:GetCallerIdentity", || {
                        self.sts.get_caller_identity().send()
                    })
                    .await?;
                out.account().map(str::to_owned).ok_or_else(|| {
                    CloudError::new(
                        ErrorKind::Other,
                        "sts:GetCallerIdentity",
                        "no account in the answer",
                    )
                })
            })
            .await
            .cloned()
    }

    /// One AWS call, retried on throttling and transient failures, its error classified as
    /// `op`. `what` names the resource in retry logs.
    async fn call<T, E, F, Fut>(&self, what: &str, op: &str, send: F) -> Result<T, CloudError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = Result<
                    T,
                    aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
                >,
            >,
        E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.call_limited(None, what, op, send).await
    }

    /// [`Self::call`], each attempt first taking a token from `limiter` (every SDK crate
    /// shares the smithy error and response types, so this serves Batch and API Gateway too).
    async fn call_limited<T, E, F, Fut>(
        &self,
        limiter: Option<&crate::cloud::limit::Limiter>,
        what: &str,
        op: &str,
        send: F,
    ) -> Result<T, CloudError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = Result<
                    T,
                    aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
                >,
            >,
        E: aws_sdk_lambda::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        crate::cloud::retry::with_retry(self.backoff, what, || async {
            if let Some(l) = limiter {
                l.acquire().await;
            }
            send().await.map_err(|e| classify(op, &e))
        })
        .await
    }

    /// A bucket's notification configuration; `None` when it has none at all.
    ///
    /// moto 5.2.5 answers an empty configuration with a `<GetBucketNotificationResponse/>` root
    /// where S3 sends `<NotificationConfiguration/>`, which the SDK refuses to parse. An answer
    /// of that exact shape (HTTP 200, that root, no content) means "no configuration" and is
    /// read as such; anything else stays an error.
    async fn notifications(
        &self,
        bucket: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput>, CloudError>{
        crate::cloud::retry::with_retry(self.backoff, bucket, || async {
            match self
                .s3
                .get_bucket_notification_configuration()
                .bucket(bucket)
                .send()
                .await
            {
                Ok(o) => Ok(Some(o)),
                Err(e) => {
                    let empty_quirk = e.raw_response().is_some_and(|r| {
                        r.status().as_u16() == 200
                            && r.body().bytes().is_some_and(|b| {
                                let text = String::from_utf8_lossy(b);
                                let text = text.trim();
                                text.contains("<GetBucketNotificationResponse")
                                    && text.ends_with("/>")
                                    && !text.contains("Configuration>")
                            })
                    });
                    if empty_quirk {
                        Ok(None)
                    } else {
                        Err(classify("s3:GetBucketNotificationConfiguration", &e))
                    }
                }
            }
        })
        .await
    }

    fn bucket_lock(&self, bucket: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.bucket_locks.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        locks.entry(bucket.to_owned()).or_default().clone()
    }
}

/// An [`AwsCloud`] bound to the account it writes to: what apply executes steps through.
#[derive(Debug)]
pub struct AccountSession<'a> {
    /// The clients.
    pub cloud: &'a AwsCloud,
    /// The account id, for ARNs of resources being created.
    pub account: String,
    /// The stack whose plan runs: what every update and delete must still belong to.
    pub stack: String,
}

impl crate::reconcile::Cloud for AwsCloud {
    type Session<'a> = AccountSession<'a>;

    async fn account_id(&self) -> Result<String, CloudError> {
        AwsCloud::account_id(self).await
    }

    fn session(&self, account: String, stack: &str) -> AccountSession<'_> {
        AccountSession {
            cloud: self,
            account,
            stack: stack.to_owned(),
        }
    }
}

impl crate::apply::Executor for AccountSession<'_> {
    async fn execute(&self, step: &crate::plan::Step) -> Result<(), CloudError> {
        self.cloud.check_still_owned(&self.stack, step).await?;
        self.cloud.execute(step, &self.account, &self.stack).await
    }
}
