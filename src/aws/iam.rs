//! IAM: the stack's managed role and its inline policy.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AwsCloud;
use super::execute::gone_is_fine;
use crate::cloud::{CloudError, ErrorKind};
use crate::model::attrs::{RoleAttrs, to_attrs};
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, ResourceKind};

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
        let role = match role {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(r) = role.role() else {
            return Ok(None);
        };
        let t: BTreeMap<String, String> = r
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
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
        let iam_tags: Vec<aws_sdk_iam::types::Tag> = tags
            .iter()
            .filter_map(|(k, v)| {
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .ok()
            })
            .collect();
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
            self.call(name, "iam:TagRole", || {
                self.iam
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(iam_tags.clone()))
                    .send()
            })
            .await?;
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
