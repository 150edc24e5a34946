//! Secret references resolved to their values: SSM Parameter Store parameters (SecureStrings
//! decrypted) and Secrets Manager secrets (the whole string, or one JSON key of it). Each
//! distinct reference is read once, all at once. A value is never logged, displayed or put in
//! an error: errors name the reference.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use scar_contract::SecretRef;

/// A secret's value. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that hands it on (the script's environment, a client's
    /// credentials).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A reference that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading secret {reference}: {why}")]
pub struct SecretError {
    /// The reference (`ssm:/team/db/password`), never the value.
    pub reference: String,
    /// Why, as AWS said it (AWS never echoes a value in an error).
    pub why: String,
}

/// The clients secrets are read with.
#[derive(Debug, Clone)]
pub struct Stores {
    /// SSM.
    pub ssm: aws_sdk_ssm::Client,
    /// Secrets Manager.
    pub secrets_manager: aws_sdk_secretsmanager::Client,
}

/// Reads every reference in `refs` (each distinct one once, concurrently).
///
/// # Errors
/// The first reference, in order, that could not be read.
pub async fn resolve(
    stores: &Stores,
    refs: impl IntoIterator<Item = &SecretRef>,
) -> Result<BTreeMap<SecretRef, Secret>, SecretError> {
    let distinct: BTreeSet<&SecretRef> = refs.into_iter().collect();
    let read = join_all(distinct.iter().map(|r| read(stores, r))).await;
    let mut out = BTreeMap::new();
    for (r, v) in distinct.into_iter().zip(read) {
        out.insert(r.clone(), v?);
    }
    Ok(out)
}

async fn read(stores: &Stores, r: &SecretRef) -> Result<Secret, SecretError> {
    let fail = |why: String| SecretError {
        reference: r.to_string(),
        why,
    };
    match r {
        SecretRef::Ssm(name) => {
            let got = stores
                .ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| fail(aws_sdk_ssm::error::DisplayErrorContext(&e).to_string()))?;
            got.parameter()
                .and_then(|p| p.value())
                .map(|v| Secret(v.to_owned()))
                .ok_or_else(|| fail("the parameter has no value".into()))
        }
        SecretRef::SecretsManager { id, key } => {
            let got = stores
                .secrets_manager
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| {
                    fail(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())
                })?;
            let Some(text) = got.secret_string() else {
                return Err(fail(
                    "the secret is binary; scar reads secret strings only".into(),
                ));
            };
            match key {
                None => Ok(Secret(text.to_owned())),
                Some(k) => field(text, k).map(Secret).map_err(fail),
            }
        }
    }
}

/// Field `key` of a JSON object secret; its text when it is a string, else its JSON.
fn field(text: &str, key: &str) -> Result<String, String> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| format!("the secret is not a JSON object, so it has no key `{key}`"))?;
    match doc.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("the secret has no key `{key}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_select_fields_and_errors_never_carry_values() {
        assert_eq!(
            field(
                r#"{"user":"u","password":"hunter2","port":5432}"#,
                "password"
            )
            .as_deref(),
            Ok("hunter2")
        );
        assert_eq!(field(r#"{"port":5432}"#, "port").as_deref(), Ok("5432"));
        let missing = field(r#"{"password":"hunter2"}"#, "user").expect_err("no key");
        assert!(!missing.contains("hunter2"), "{missing}");
        let not_json = field("hunter2", "user").expect_err("not json");
        assert!(!not_json.contains("hunter2"), "{not_json}");
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "Secret(..)");
    }
}
