//! Executing plan steps against AWS: references resolved, each step dispatched to its
//! kind's adapter ([`super::kind`]). Every create writes the ownership tags in the create call itself; every
//! delete tolerates "already gone".

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::AwsCloud;
use super::kind::{Adapter, Adopt, Write, adapter, view};
use crate::cloud::CloudError;
use crate::model::Reference;
use crate::model::attrs::id;
use crate::plan::{APPLIED_TAG, Action, Step};

impl AwsCloud {
    /// Resolves references left in a step's attributes. Every ARN scar refers to is
    /// deterministic once the account is known.
    pub(super) fn resolve(&self, account: &str, attrs: &Map<String, Value>) -> Map<String, Value> {
        attrs
            .iter()
            .map(|(k, v)| {
                let v = match Reference::from_value(v) {
                    Some(r) if r.attribute == "account_id" => Value::String(account.to_owned()),
                    Some(r) => adapter!(r.address.kind, A => {
                        A::resolve(self, &r.address.name, &r.attribute, account)
                    })
                    .unwrap_or_else(|| v.clone()),
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// Executes one step.
    ///
    /// # Errors
    /// The first AWS error that retries and waits did not cure.
    pub async fn execute(&self, step: &Step, account: &str, stack: &str) -> Result<(), CloudError> {
        if step.action == Action::NoOp || step.covered_by.is_some() {
            return Ok(());
        }
        let empty = Map::new();
        let after = step
            .after
            .as_ref()
            .map(|a| self.resolve(account, a))
            .unwrap_or_default();
        let before = step.before.as_ref().unwrap_or(&empty);
        let mut tags = view::<id::Tagged>(&step.address, &after)?.tags;
        if let Some(h) = &step.applied {
            tags.insert(APPLIED_TAG.to_owned(), h.clone());
        }
        let w = Write {
            step,
            account,
            stack,
            after: &after,
            before,
            tags: &tags,
        };
        adapter!(step.address.kind, A => A::write(self, &w).await)
    }

    /// Writes the stack's ownership tags (and only those) on an existing resource.
    ///
    /// # Errors
    /// For kinds that carry no tags, or when AWS refuses.
    pub async fn adopt(
        &self,
        address: &crate::model::Address,
        wanted: &crate::model::DesiredResource,
        account: &str,
    ) -> Result<(), CloudError> {
        let ours: BTreeMap<String, String> = view::<id::Tagged>(address, &wanted.attrs)?
            .tags
            .into_iter()
            .filter(|(k, _)| k.starts_with("scar:"))
            .collect();
        let a = Adopt {
            address,
            wanted: &wanted.attrs,
            account,
            ours: &ours,
        };
        adapter!(address.kind, A => A::adopt(self, &a).await)
    }
}
