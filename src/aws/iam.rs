//! IAM: the stack's managed role and its inline policy.

use std::collections::BTreeMap;

use aws_sdk_iam::types as iam;
use serde_json::{Value, json};

use super::AwsCloud;
use super::kind::{Adapter, Adopt, Check, Read, Write, found, gone_is_fine, view};
use crate::cloud::{CloudError, ErrorKind};
use crate::model::attrs::{RoleAttrs, to_attrs};
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, ResourceKind};
use crate::plan::Action;

/// The name of the inline policy scar writes on its managed role.
pub(super) const ROLE_POLICY: &str = "scar";

/// IAM returns policy documents URL-encoded.
pub(super) fn decode_policy(doc: &str) -> Value {
    let decoded = crate::text::percent_decode(doc);
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

impl AwsCloud {
    /// The stack's managed role, `scar-<stack>-exec`, with its inline policy.
    pub(super) async fn read_role(
        &self,
        stack: &str,
    ) -> Result<Option<(Address, LiveResource)>, CloudError> {
        let name = crate::manifest::names::managed_role(stack);
        let role = self
            .call(&name, "iam:GetRole", || {
                self.iam.get_role().role_name(&name).send()
            })
            .await;
        let Some(role) = found(role)? else {
            return Ok(None);
        };
        let Some(r) = role.role() else {
            return Ok(None);
        };
        let t = tag_map(r.tags());
        let policy = self
            .call(&name, "iam:GetRolePolicy", || {
                self.iam
                    .get_role_policy()
                    .role_name(&name)
                    .policy_name(ROLE_POLICY)
                    .send()
            })
            .await;
        let policy = match policy {
            Ok(p) => decode_policy(p.policy_document()),
            Err(e) if e.kind == ErrorKind::NotFound => Value::Null,
            Err(e) => return Err(e),
        };
        let attrs = to_attrs(&RoleAttrs {
            name: name.to_owned(),
            assume_role_policy: decode_policy(r.assume_role_policy_document().unwrap_or_default()),
            policy,
            permissions_boundary: r
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .unwrap_or_default()
                .to_owned(),
            tags: t.clone(),
        });
        let mut outputs = BTreeMap::new();
        outputs.insert("arn".into(), json!(r.arn()));
        Ok(Some((
            Address::new(ResourceKind::IamRole, name),
            LiveResource {
                attrs,
                owner: Owner::from_global_tags(stack, &self.region, &t),
                fingerprint: None,
                outputs,
            },
        )))
    }

    pub(super) async fn put_role(
        &self,
        name: &str,
        account: &str,
        a: &RoleAttrs,
        tags: &BTreeMap<String, String>,
        create: bool,
    ) -> Result<(), CloudError> {
        let trust = a.assume_role_policy.to_string();
        // A plan made without reading the account leaves its mark; never sent as is.
        let policy = a.policy.to_string().replace(crate::model::ACCOUNT, account);
        let boundary = a.permissions_boundary.clone();
        let iam_tags = iam_tags(tags);
        if create {
            self.call(name, "iam:CreateRole", || {
                self.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(&trust)
                    .set_permissions_boundary((!boundary.is_empty()).then(|| boundary.clone()))
                    .set_tags(Some(iam_tags.clone()))
                    .send()
            })
            .await?;
        } else {
            self.call(name, "iam:UpdateAssumeRolePolicy", || {
                self.iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(&trust)
                    .send()
            })
            .await?;
            self.tag_role(name, &iam_tags).await?;
            if boundary.is_empty() {
                let r = self
                    .call(name, "iam:DeleteRolePermissionsBoundary", || {
                        self.iam
                            .delete_role_permissions_boundary()
                            .role_name(name)
                            .send()
                    })
                    .await;
                gone_is_fine(r)?;
            } else {
                self.call(name, "iam:PutRolePermissionsBoundary", || {
                    self.iam
                        .put_role_permissions_boundary()
                        .role_name(name)
                        .permissions_boundary(&boundary)
                        .send()
                })
                .await?;
            }
        }
        self.call(name, "iam:PutRolePolicy", || {
            self.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(ROLE_POLICY)
                .policy_document(&policy)
                .send()
        })
        .await?;
        Ok(())
    }

    async fn tag_role(&self, name: &str, tags: &[iam::Tag]) -> Result<(), CloudError> {
        self.call(name, "iam:TagRole", || {
            self.iam
                .tag_role()
                .role_name(name)
                .set_tags(Some(tags.to_vec()))
                .send()
        })
        .await?;
        Ok(())
    }

    /// The role's tags, read now.
    async fn role_tags(&self, name: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let out = self
            .call(name, "iam:GetRole", || {
                self.iam.get_role().role_name(name).send()
            })
            .await?;
        Ok(out.role().map(|r| tag_map(r.tags())).unwrap_or_default())
    }

    pub(super) async fn delete_role(&self, name: &str) -> Result<(), CloudError> {
        let r = self
            .call(name, "iam:DeleteRolePolicy", || {
                self.iam
                    .delete_role_policy()
                    .role_name(name)
                    .policy_name(ROLE_POLICY)
                    .send()
            })
            .await;
        gone_is_fine(r)?;
        let r = self
            .call(name, "iam:DeleteRole", || {
                self.iam.delete_role().role_name(name).send()
            })
            .await;
        gone_is_fine(r)
    }
}

fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<iam::Tag> {
    tags.iter()
        .filter_map(|(k, v)| iam::Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn tag_map(tags: &[iam::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// The `iam_role` kind: the stack's managed role, one for every region the stack is in.
pub(super) struct Role;

impl Adapter for Role {
    const READ: Read = Read::Role;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        if w.step.action == Action::Delete {
            return cloud.delete_role(w.name()).await;
        }
        let r: RoleAttrs = view(&w.step.address, w.after)?;
        cloud
            .put_role(
                w.name(),
                w.account,
                &r,
                w.tags,
                w.step.action == Action::Create,
            )
            .await
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let t = cloud.role_tags(&c.step.address.name).await?;
        Ok(Owner::from_global_tags(c.stack, &cloud.region, &t))
    }

    async fn adopt(cloud: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        cloud.tag_role(a.name(), &iam_tags(a.ours)).await
    }

    fn resolve(_: &AwsCloud, name: &str, _: &str, account: &str) -> Option<Value> {
        Some(Value::String(format!("arn:aws:iam::{account}:role/{name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_decode_from_url_encoding_or_plain_json() {
        assert_eq!(decode_policy("%7B%22a%22%3A1%7D"), json!({"a": 1}));
        assert_eq!(decode_policy("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(crate::text::percent_decode("100%"), "100%");
    }
}
