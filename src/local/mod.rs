//! Running functions here, inside their real images, without Docker: the image unpacked into
//! a cached root file system ([`crate::image::local`]), run in an unprivileged sandbox
//! ([`sandbox`]) against a Lambda Runtime API scar serves on loopback ([`runtime_api`]).

pub mod launcher;
pub mod run;
pub mod runner;
pub mod runtime_api;
pub mod sandbox;
pub mod session;
pub mod stack;
pub mod workflow;

use std::path::PathBuf;
use std::sync::Arc;

use crate::cloud::CloudError;

/// Why a local run could not do what it was asked; each says what, and how to go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LocalError {
    /// The stack has no function of that name.
    #[error("the stack has no function `{0}`")]
    NoFunction(String),
    /// The desired graph has no function of that name.
    #[error("the plan has no function `{0}`")]
    NotPlanned(String),
    /// What the plan holds for a function cannot be run from: its attributes are not what
    /// scar writes, or its image reference does not parse.
    #[error("{0}")]
    Planned(String),
    /// A prebuilt image named by a reference only apply resolves.
    #[error("function `{0}`: its image is not known before apply")]
    ImageUnknown(String),
    /// A multi-node Batch job.
    #[error(
        "function `{0}` runs as a multi-node Batch job, which does not run here: run it in AWS Batch"
    )]
    MultiNode(String),
    /// A delegating function without a job definition.
    #[error("function `{0}` delegates to Batch but has no job definition")]
    NoJob(String),
    /// An architecture this machine cannot run.
    #[error(
        "function `{function}` is built for {arch}; this machine is {host} and has no emulator registered for {arch} (Debian: apt install qemu-user-static binfmt-support)"
    )]
    Architecture {
        /// The function.
        function: String,
        /// Its image's architecture.
        arch: String,
        /// This machine's.
        host: String,
    },
    /// The function's image could not be made ready.
    #[error("the image of `{function}`: {why}")]
    Image {
        /// The function.
        function: String,
        /// Why.
        why: String,
    },
    /// The image's root file system cannot hold what the sandbox mounts.
    #[error("{0}")]
    Root(String),
    /// A file or folder could not be made or read.
    #[error("{}: {source}", path.display())]
    File {
        /// Which.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// `SCAR_SANDBOX=bwrap` without bubblewrap.
    #[error(
        "SCAR_SANDBOX=bwrap, but bubblewrap (`bwrap`, Debian and Ubuntu package `bubblewrap`) is not on PATH"
    )]
    NoBubblewrap,
    /// `SCAR_SANDBOX` names no sandbox scar has.
    #[error("SCAR_SANDBOX is `{0}`; it takes `bwrap` or `builtin`")]
    SandboxVariable(String),
    /// The machine does not let the sandbox make its namespaces.
    #[error(
        "this machine cannot make the sandbox a function runs in here ({tool} said: {said}): {how}"
    )]
    NoNamespaces {
        /// The sandbox's program.
        tool: &'static str,
        /// What it said.
        said: String,
        /// What is missing, and how to allow it.
        how: String,
    },
    /// The sandbox could not be started.
    #[error("starting the sandbox ({tool}): {source}")]
    Start {
        /// The sandbox's program.
        tool: &'static str,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The registry client could not be made.
    #[error("{0}")]
    Registry(String),
    /// Nowhere to keep images.
    #[error("no cache folder: set SCAR_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCache,
    /// An `s3://` address without a bucket or a key.
    #[error("{0}: give s3://BUCKET/KEY")]
    NotAnObject(String),
    /// Local files for a function that has no S3 input.
    #[error("function `{function}` has no S3 input to put {input} into")]
    NoS3Input {
        /// The function.
        function: String,
        /// What was to be put.
        input: String,
    },
    /// Local files that cannot be read.
    #[error("{input}: {why}")]
    Unreadable {
        /// What was given.
        input: String,
        /// Why.
        why: String,
    },
    /// A file that could not be uploaded.
    #[error("uploading {}: {source}", path.display())]
    Upload {
        /// Which.
        path: PathBuf,
        /// Why.
        #[source]
        source: CloudError,
    },
    /// No function starts a workflow.
    #[error(
        "no function has an S3 input that no other function feeds: name the function to start with"
    )]
    NoEntry,
    /// Several functions do.
    #[error("several functions start workflows ({}): name the one to start with", .0.join(", "))]
    Entries(Vec<String>),
    /// The run reached its limit of invocations.
    #[error("not run: the run reached its limit of {0} invocations")]
    Limit(usize),
}

impl LocalError {
    /// The [`LocalError::File`] of `path`.
    pub(crate) fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
        move |e| LocalError::File {
            path: path.to_owned(),
            source: Arc::new(e),
        }
    }
}
