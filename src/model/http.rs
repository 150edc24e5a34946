//! The HTTP endpoint of a function: a regional REST API with `{proxy+}` ANY and a Lambda proxy
//! integration, deployed to a stage, and the permission that lets API Gateway invoke the
//! function. The API is updated in place, so its id (and URL) survives every function update.

use serde_json::Value;

use super::attrs::{ApiAttrs, PermissionAttrs, Throttle, to_attrs};
use super::{Address, DesiredResource, Reference, ResourceKind, ownership_tags};
use crate::manifest::names;
use crate::manifest::types::HttpSpec;

/// The statement Id of the API Gateway permission of a function of `stack`.
#[must_use]
pub fn statement_id(stack: &str) -> String {
    format!("scar-{stack}-apigw")
}

/// The `auth` attribute of an API: `none`, `iam` or `api_key`.
#[must_use]
pub fn auth_name(auth: Option<crate::manifest::types::HttpAuth>) -> &'static str {
    use crate::manifest::types::HttpAuth;
    match auth {
        None | Some(HttpAuth::None) => "none",
        Some(HttpAuth::Iam) => "iam",
        Some(HttpAuth::ApiKey) => "api_key",
    }
}

/// The media types API Gateway passes as bytes: all of them.
pub const BINARY_MEDIA_TYPES: [&str; 1] = ["*/*"];

/// The invoke URL of a deployed API.
#[must_use]
pub fn invoke_url(api_id: &str, region: &str, stage: &str) -> String {
    format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}")
}

/// The API and its permission.
pub(super) fn resources(
    stack: &str,
    function: &str,
    http: &HttpSpec,
    source_account: Value,
    user_tags: &std::collections::BTreeMap<String, String>,
) -> Vec<DesiredResource> {
    let api = Address::new(ResourceKind::HttpApi, function);
    let fn_address = Address::new(ResourceKind::Function, function);
    let a = to_attrs(&ApiAttrs {
        name: http
            .name
            .clone()
            .unwrap_or_else(|| names::derive(stack, function).api),
        description: http.description.clone().unwrap_or_else(|| {
            format!("HTTP endpoint of function {function} (scar stack {stack})")
        }),
        endpoint_type: "REGIONAL".to_owned(),
        // Every body is binary to API Gateway: requests reach the function base64-encoded,
        // and the function's base64 answers (`isBase64Encoded`) leave as the raw bytes.
        binary_media_types: BINARY_MEDIA_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        stage: http
            .stage
            .clone()
            .unwrap_or_else(|| names::DEFAULT_STAGE.to_owned()),
        function: function.to_owned(),
        auth: auth_name(http.auth).to_owned(),
        throttle: http.throttle.as_ref().map(|t| Throttle {
            rate_limit: t.rate_limit,
            burst_limit: t.burst_limit,
        }),
        url: Reference::value(&api, "url"),
        tags: ownership_tags(stack, &api, user_tags),
    });
    let permission = Address::new(
        ResourceKind::LambdaPermission,
        format!("{function}/apigateway"),
    );
    let p = to_attrs(&PermissionAttrs::<Value> {
        function: function.to_owned(),
        statement_id: statement_id(stack),
        principal: "apigateway.amazonaws.com".to_owned(),
        source_arn: Reference::value(&api, "source_arn"),
        source_account,
    });
    vec![
        DesiredResource {
            address: api.clone(),
            attrs: a,
            sensitive: Vec::new(),
            depends_on: vec![fn_address.clone()],
        },
        DesiredResource {
            address: permission,
            attrs: p,
            sensitive: Vec::new(),
            depends_on: vec![fn_address, api],
        },
    ]
}
