//! The desired graph's values: resources, their references to one another, and what each
//! kind compares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Address, ResourceKind, attrs};

/// A value in an attribute that is only known once another resource exists, such as the ARN of
/// a role scar is about to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The resource referred to.
    pub address: Address,
    /// Its attribute (`arn`).
    pub attribute: String,
}

impl Reference {
    /// The JSON form of a reference to `attribute` of `address`.
    #[must_use]
    pub fn value(address: &Address, attribute: &str) -> Value {
        Reference {
            address: address.clone(),
            attribute: attribute.into(),
        }
        .to_value()
    }

    /// The JSON form kept inside attributes until the plan resolves it.
    #[must_use]
    pub fn to_value(&self) -> Value {
        json!(RefForm {
            address: self.address.to_string(),
            attribute: self.attribute.clone(),
        })
    }

    /// Reads the JSON form back.
    #[must_use]
    pub fn from_value(v: &Value) -> Option<Reference> {
        let form = RefForm::deserialize(v).ok()?;
        Some(Reference {
            address: form.address.parse().ok()?,
            attribute: form.attribute,
        })
    }
}

/// A reference's JSON form: `{"$ref": "role/x", "attribute": "arn"}`.
#[derive(Serialize, Deserialize)]
struct RefForm {
    #[serde(rename = "$ref")]
    address: String,
    attribute: String,
}

/// One resource the manifests ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredResource {
    /// Its address.
    pub address: Address,
    /// Attributes as scar compares them with the live resource.
    pub attrs: Map<String, Value>,
    /// Top-level attribute keys (or `key.subkey` paths) whose values are never shown.
    pub sensitive: Vec<String>,
    /// Resources that must exist before this one.
    pub depends_on: Vec<Address>,
}

/// Everything one stack asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredGraph {
    /// The stack name (the ownership scope).
    pub stack: String,
    /// The region.
    pub region: String,
    /// The account guard, if set.
    pub account_id: Option<String>,
    /// The stack's own failures bucket, when a function records its failures there: it must
    /// be the stack's (a bucket of that name that is not would receive the records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_bucket: Option<String>,
    /// True when owned buckets that no manifest uses may be deleted once empty.
    pub delete_empty_buckets: bool,
    /// Resources, sorted by address.
    pub resources: Vec<DesiredResource>,
    /// Attributes whose live values a plan keeps (`ignoreChanges`), by resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ignore_changes: BTreeMap<Address, Vec<String>>,
}

impl DesiredGraph {
    /// What to read live state for: the graph itself, or for a destroy, the graph without its
    /// images (a destroy deletes what it finds; it needs no base image resolved).
    #[must_use]
    pub fn to_read(&self, destroy: bool) -> std::borrow::Cow<'_, DesiredGraph> {
        if !destroy {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut g = self.clone();
        g.resources
            .retain(|r| r.address.kind != ResourceKind::FunctionImage);
        std::borrow::Cow::Owned(g)
    }

    /// The resource at `address`.
    #[must_use]
    pub fn get(&self, address: &Address) -> Option<&DesiredResource> {
        self.resources
            .binary_search_by(|r| r.address.cmp(address))
            .ok()
            .map(|i| &self.resources[i])
    }
}

/// Attribute keys that scar writes but does not read back on every plan (to stay within two
/// calls per function); a live resource without them is not a change. Each kind's list is
/// beside its attributes ([`attrs::Fields`]).
#[must_use]
pub fn unread_fields(kind: ResourceKind) -> &'static [&'static str] {
    attrs::fields(kind).1
}

/// Attribute keys whose change AWS cannot apply in place ([`attrs::Fields`]).
#[must_use]
pub fn replace_fields(kind: ResourceKind) -> &'static [&'static str] {
    attrs::fields(kind).0
}

/// A short, stable hash (FNV-1a, 32 bits, hex) used to name notification entries after their
/// rule, so reordering inputs in a manifest changes nothing in AWS.
#[must_use]
pub fn short_hash(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}
