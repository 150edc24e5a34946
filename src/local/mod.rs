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
