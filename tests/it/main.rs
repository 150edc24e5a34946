//! scar's integration tests, in one test binary: each module is one area (plan and apply
//! against moto, images against a real registry, the runtime under a Runtime API emulator, ...).
//! One binary links the AWS SDKs once; fifteen binaries linked them fifteen times.
//!
//! Run one area with a filter: `./scripts/test.sh --test it reconcile::`.

mod support;

mod acceptance;
mod adopt_scar;
mod architecture;
mod batch_http;
mod environments;
mod failures;
mod faults;
mod gitops_doc;
mod graph;
mod image;
mod import;
mod local;
mod local_run;
mod lock;
mod never_panics;
mod ops;
mod plan_snapshots;
mod queued;
mod reconcile;
mod runtime;
mod schemas;
mod supervisor;
mod trust;
mod validate;
mod watch;
