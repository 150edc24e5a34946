//! scar: containers as serverless pipelines on AWS, as a declarative reconciler.
//!
//! The pure core (manifest loading and validation, SCAR import) makes no network call.

#![forbid(unsafe_code)]

pub mod apply;
pub mod cli;
pub mod cloud;
pub mod diag;
pub mod image;
pub mod import;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod render;
pub mod text;
pub mod watch;
