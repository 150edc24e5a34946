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
    /// A global resource (the managed IAM role) owned by a stack of the same name in another
    /// region (that region): another stack, whose lock this one does not hold.
    OtherRegion(String),
    /// Carries no scar tags: someone else's.
    Unowned,
    /// The tags could not be read (the reason): ownership is unknown, so scar must not write.
    Unknown(String),
}

impl Owner {
    /// The owner the tags `t` say, for `stack`. Both `scar:stack` and `scar:managed-by=scar`
    /// are needed: a hand-copied `scar:stack` tag does not make a resource prunable.
    #[must_use]
    pub fn from_tags(stack: &str, t: &BTreeMap<String, String>) -> Owner {
        match t.get(super::tags::STACK) {
            Some(_) if t.get(super::tags::MANAGED_BY).map(String::as_str) != Some("scar") => {
                Owner::Unowned
            }
            Some(s) if s == stack => Owner::ThisStack,
            Some(s) => Owner::OtherStack(s.clone()),
            None => Owner::Unowned,
        }
    }

    /// [`Owner::from_tags`] for a global resource (the managed IAM role), for `stack` in
    /// `region`: one recorded for the same stack name in another region is that region's
    /// stack's. One without the record (made before scar wrote it) is taken as this one's, and
    /// its next update records the region.
    #[must_use]
    pub fn from_global_tags(stack: &str, region: &str, t: &BTreeMap<String, String>) -> Owner {
        match (Owner::from_tags(stack, t), t.get(super::tags::REGION)) {
            (Owner::ThisStack, Some(r)) if r != region => Owner::OtherRegion(r.clone()),
            (owner, _) => owner,
        }
    }
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
    /// The account the credentials belong to, when read: ARNs the model could only write
    /// with [`super::ACCOUNT`] are completed with it.
    #[serde(default)]
    pub account: Option<String>,
    /// The region's default VPC network, read when a Batch compute environment names no
    /// subnets or security groups; `None` when not read or when there is no default VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_network: Option<DefaultNetwork>,
}

/// The region's default VPC: what the Batch console offers when nothing is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultNetwork {
    /// The default VPC's id.
    pub vpc: String,
    /// Its default subnets (one per availability zone), sorted.
    pub subnets: Vec<String>,
    /// Its `default` security group.
    pub security_group: String,
}

impl LiveState {
    /// The live resource at `address`.
    #[must_use]
    pub fn get(&self, address: &Address) -> Option<&LiveResource> {
        self.resources.get(address)
    }
}

impl LiveState {
    /// Moves the record of each function's assembled image out of its tags into a live
    /// `function_image/<name>` (its inputs as attributes, the function's image as the `uri`
    /// output): the record is the image's state, written with the function, read with the
    /// function's one `GetFunction`.
    pub fn split_image_records(&mut self) {
        use super::tags::IMAGE_RECORD;
        let mut images = Vec::new();
        for (address, f) in &mut self.resources {
            if address.kind != super::ResourceKind::Function {
                continue;
            }
            let Some(Value::Object(t)) = f.attrs.get_mut("tags") else {
                continue;
            };
            let deployed = t.remove(super::tags::IMAGE_DEPLOYED);
            let mut attrs = Map::new();
            for (tag, attribute) in IMAGE_RECORD {
                if let Some(v) = t.remove(tag) {
                    attrs.insert(attribute.to_owned(), v);
                }
            }
            if attrs.len() < IMAGE_RECORD.len() {
                continue;
            }
            // The image scar deployed, when recorded (else the live one): a function running
            // another image than that has drifted, and is set back.
            let uri = deployed
                .or_else(|| f.attrs.get("image").cloned())
                .unwrap_or(Value::Null);
            attrs.insert("image".into(), uri.clone());
            let mut outputs = BTreeMap::new();
            outputs.insert("uri".to_owned(), uri);
            images.push((
                super::Address::new(super::ResourceKind::FunctionImage, address.name.clone()),
                LiveResource {
                    attrs,
                    owner: f.owner.clone(),
                    fingerprint: None,
                    outputs,
                },
            ));
        }
        self.resources.extend(images);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tags;

    #[test]
    fn owners_come_from_both_tags() {
        let mut t = BTreeMap::new();
        assert_eq!(Owner::from_tags("demo", &t), Owner::Unowned);
        t.insert(tags::STACK.to_owned(), "demo".to_owned());
        assert_eq!(
            Owner::from_tags("demo", &t),
            Owner::Unowned,
            "scar:managed-by is required too"
        );
        t.insert(tags::MANAGED_BY.to_owned(), "scar".to_owned());
        assert_eq!(Owner::from_tags("demo", &t), Owner::ThisStack);
        assert_eq!(
            Owner::from_tags("other", &t),
            Owner::OtherStack("demo".into())
        );
        t.insert(tags::REGION.to_owned(), "eu-west-1".to_owned());
        assert_eq!(
            Owner::from_global_tags("demo", "us-east-1", &t),
            Owner::OtherRegion("eu-west-1".into())
        );
        assert_eq!(
            Owner::from_global_tags("demo", "eu-west-1", &t),
            Owner::ThisStack
        );
    }
}
