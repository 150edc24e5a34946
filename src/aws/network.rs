//! The region's default VPC, for Batch compute environments that name no subnets or security
//! groups (SCAR's examples do not): its default subnets and its `default` security group, as
//! the Batch console offers them. Three read-only EC2 Query API calls, signed with SigV4 (an
//! EC2 SDK crate would be the largest dependency of all, for three reads).

use std::time::SystemTime;

use super::AwsCloud;
use crate::cloud::{CloudError, ErrorKind};
use crate::model::live::DefaultNetwork;

/// The EC2 Query API version spoken.
const EC2_VERSION: &str = "2016-11-15";

impl AwsCloud {
    /// The region's default VPC network; `None` when the region has no default VPC.
    ///
    /// # Errors
    /// An EC2 error (`ec2:DescribeVpcs`, `ec2:DescribeSubnets`, `ec2:DescribeSecurityGroups`).
    pub(super) async fn default_network(&self) -> Result<Option<DefaultNetwork>, CloudError> {
        let filter = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .enumerate()
                .flat_map(|(i, (name, value))| {
                    [
                        (format!("Filter.{}.Name", i + 1), (*name).to_owned()),
                        (format!("Filter.{}.Value.1", i + 1), (*value).to_owned()),
                    ]
                })
                .collect()
        };
        let vpcs = self
            .ec2("DescribeVpcs", &filter(&[("isDefault", "true")]))
            .await?;
        let Some(vpc) = values(&vpcs, "vpcId").into_iter().next() else {
            return Ok(None);
        };
        let subnets = self
            .ec2(
                "DescribeSubnets",
                &filter(&[("vpc-id", &vpc), ("default-for-az", "true")]),
            )
            .await?;
        let mut subnets = values(&subnets, "subnetId");
        subnets.sort();
        subnets.dedup();
        let groups = self
            .ec2(
                "DescribeSecurityGroups",
                &filter(&[("vpc-id", &vpc), ("group-name", "default")]),
            )
            .await?;
        // The group's own id comes first; its rules may name it again.
        let Some(security_group) = values(&groups, "groupId").into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(DefaultNetwork {
            vpc,
            subnets,
            security_group,
        }))
    }

    /// One signed EC2 Query API call, retried as every AWS call is (throttling, 5xx); the
    /// XML answer.
    async fn ec2(&self, action: &str, params: &[(String, String)]) -> Result<String, CloudError> {
        crate::cloud::retry::with_retry(self.backoff, action, || self.ec2_once(action, params))
            .await
    }

    async fn ec2_once(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, CloudError> {
        let op = format!("ec2:{action}");
        let fail = |kind, message: String| CloudError::new(kind, &op, message);
        let url = match &self.endpoint {
            Some(e) => format!("{}/", e.trim_end_matches('/')),
            None => format!("https://ec2.{}.amazonaws.com/", self.region),
        };
        let mut body = format!("Action={action}&Version={EC2_VERSION}");
        for (k, v) in params {
            body.push_str(&format!(
                "&{}={}",
                crate::text::percent_encode(k),
                crate::text::percent_encode(v)
            ));
        }
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| fail(ErrorKind::AccessDenied, "no AWS credentials".into()))?;
        let credentials = aws_credential_types::provider::ProvideCredentials::provide_credentials(
            provider.as_ref(),
        )
        .await
        .map_err(|e| fail(ErrorKind::AccessDenied, format!("no AWS credentials: {e}")))?;
        let identity: aws_smithy_runtime_api::client::identity::Identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(aws_sigv4::http_request::SigningSettings::default())
            .build()
            .map_err(|e| fail(ErrorKind::Invalid, e.to_string()))?
            .into();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signable = aws_sigv4::http_request::SignableRequest::new(
            "POST",
            &url,
            [("content-type", content_type)].into_iter(),
            aws_sigv4::http_request::SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| fail(ErrorKind::Invalid, e.to_string()))?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
            .map_err(|e| fail(ErrorKind::Invalid, e.to_string()))?
            .into_parts();
        let signed: Vec<(String, String)> = instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut headers: Vec<(&str, &str)> = vec![("content-type", content_type)];
        headers.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // EC2's answers for one VPC's subnets and groups: kilobytes; 16 MiB is far beyond.
        let (status, answer) = crate::net::post(&url, &headers, body.into_bytes(), 16 << 20)
            .await
            .map_err(|e| fail(ErrorKind::Transient, e))?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        if status == 200 {
            return Ok(text);
        }
        let code = values(&text, "Code").into_iter().next().unwrap_or_default();
        let message = values(&text, "Message").into_iter().next().unwrap_or(text);
        let kind = match (status, code.as_str()) {
            (_, "RequestLimitExceeded" | "Throttling") => ErrorKind::Throttled,
            (401 | 403, _) | (_, "UnauthorizedOperation" | "AuthFailure") => {
                ErrorKind::AccessDenied
            }
            (500.., _) => ErrorKind::Transient,
            _ => ErrorKind::Other,
        };
        Err(fail(kind, format!("{code}: {message}")))
    }
}

/// The text of every `<tag>...</tag>` element in `xml`, in order (EC2's answers are plain:
/// no attributes on these, no CDATA).
fn values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        out.push(rest[..end].trim().to_owned());
        rest = &rest[end + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::values;

    #[test]
    fn values_are_read_in_order() {
        let xml = "<r><item><groupId>sg-1</groupId><ipPermissions><item><groupId>sg-1</groupId></item></ipPermissions></item></r>";
        assert_eq!(values(xml, "groupId"), ["sg-1", "sg-1"]);
        assert!(values(xml, "vpcId").is_empty());
    }
}
