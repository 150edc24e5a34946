//! The desired resource graph: what a validated manifest set asks to exist in AWS.
//!
//! [`build`] expands each manifest into typed resources with addresses, attributes and
//! dependency edges. It is pure: no AWS call, no clock. Attributes are JSON values so that the
//! diff, the plan file and every renderer treat all kinds alike; the kind decides only which
//! fields force a replacement ([`replace_fields`]).

mod address;
pub mod attrs;
pub mod batch;
mod expand;
pub mod failures;
mod grants;
mod graph;
pub mod http;
pub mod live;
pub mod pause;
pub mod policy;
pub mod queues;
mod role;
pub mod tags;
mod triggers;

pub use address::{Address, BadAddress, ResourceKind};
use expand::int;
pub use expand::{SCRIPT_ENV, build, function_image};
pub use grants::ACCOUNT;
pub use graph::{
    DesiredGraph, DesiredResource, Reference, replace_fields, short_hash, unread_fields,
};
pub use tags::ownership_tags;
pub use triggers::trigger_id;
