//! Observed state: what scar read from AWS, normalised into the same attribute shape as the
//! desired graph so the diff compares like with like. Pure data; the AWS adapters fill it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Address;

/// Who owns a live resource, as its tags (or Id prefix) say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Owner {
    /// Owned by the stack being planned.
    ThisStack,
    /// Owned by another scar stack (its name).
    OtherStack(String),
    /// Carries no scar tags: someone else's.
    Unowned,
    /// The tags could not be read (the reason): ownership is unknown, so scar must not write.
    Unknown(String),
}

/// One live resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveResource {
    /// Normalised attributes, in the desired graph's shape. Server-owned fields (RevisionId,
    /// LastModified, State, CodeSize...) are left out so an unchanged resource diffs empty.
    pub attrs: Map<String, Value>,
    /// Who owns it.
    pub owner: Owner,
    /// A version marker to detect changes between plan and apply (Lambda RevisionId, a hash of
    /// a notification entry...).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Values other resources may refer to (`arn`, `account_id`).
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

/// Everything read for one plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    /// Live resources by address: those the desired graph names, and every resource found
    /// owned by the stack.
    pub resources: BTreeMap<Address, LiveResource>,
}

impl LiveState {
    /// The live resource at `address`.
    #[must_use]
    pub fn get(&self, address: &Address) -> Option<&LiveResource> {
        self.resources.get(address)
    }
}
