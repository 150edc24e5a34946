//! scar: containers as serverless pipelines on AWS, as a declarative reconciler.
//!
//! The pure core (manifest loading and validation, SCAR import) makes no network call.
//!
//! Layers, each depending only on those below it (tests/it/architecture.rs checks that no
//! module depends on one that depends back on it):
//! - `cli` parses arguments and dispatches to one command each;
//! - `aws` is the adapter: the only module that speaks to AWS's SDKs;
//! - `reconcile` (the one reconcile step, written against its ports: a `Cloud`, a `Ui`);
//! - `apply` (the executor port and engine), `watch` (scheduling), `lock`;
//! - `plan` (desired against live, pure), `render` (what users read);
//! - `model` (the desired graph and live state), `image` (daemonless images), `import`;
//! - `manifest` (load, schema, checks and the supervisor's contract), `diag`, `cloud` (the
//!   errors and retry policy every adapter shares), `text`, `net` (one HTTP POST), `cache`
//!   (scar's private cache folder).

#![forbid(unsafe_code)]

pub mod apply;
pub mod aws;
pub mod cache;
pub mod cli;
pub mod cloud;
pub mod diag;
pub mod failures;
pub mod image;
pub mod import;
pub mod local;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod net;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod text;
pub mod watch;
