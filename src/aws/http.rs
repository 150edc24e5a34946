//! API Gateway REST APIs in front of functions: live reads (one paged `GetRestApis` for the
//! stack, then stages and the proxy integration of each owned API), and create, in-place
//! update and delete. An API is never recreated by an update, so its id and URL stay.

use std::collections::BTreeMap;

use aws_sdk_apigateway::types as gt;
use serde_json::{Map, Value, json};

use super::AwsCloud;
use super::kind::{
    Adapter, Adopt, Check, Read, Write, gone_is_fine, stale_tag_keys, view, view_read,
};
use super::page::pages;
use crate::cloud::{CloudError, ErrorKind};
use crate::model::attrs::{ApiAttrs, Throttle, id, to_attrs};
use crate::model::http::invoke_url;
use crate::model::live::{LiveResource, Owner};
use crate::model::{Address, DesiredGraph, ResourceKind, short_hash, tags};
use crate::plan::{Action, Step};

/// The header a client sets to `Event` for an asynchronous call; passed to Lambda as is.
const INVOCATION_TYPE: &str = "X-Amz-Invocation-Type";
const PROXY_PATH: &str = "/{proxy+}";

/// A REST API the stack owns: its address, id, what AWS said of it, and its tags.
type OwnedApi = (Address, String, gt::RestApi, BTreeMap<String, String>);

impl AwsCloud {
    /// The API's resources, path to id.
    async fn resource_ids(&self, id: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let resources = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:GetResources",
                || {
                    self.apigateway
                        .get_resources()
                        .rest_api_id(id)
                        .limit(500)
                        .send()
                },
            )
            .await?;
        Ok(resources
            .items()
            .iter()
            .filter_map(|r| Some((r.path()?.to_owned(), r.id()?.to_owned())))
            .collect())
    }

    /// The REST APIs the stack owns, by address, with their id and tags. A create retried
    /// after AWS made the API but lost the answer leaves two APIs with one address: the oldest
    /// keeps it, any other becomes `http_api/<function>#<id>`, which no manifest asks for, so
    /// the plan deletes it.
    async fn owned_apis(&self, stack: &str) -> Result<Vec<OwnedApi>, CloudError> {
        let mut owned = Vec::new();
        let pages = pages(
            "apigateway:GetRestApis",
            |position| async move {
                self.call_limited(
                    Some(&self.limits.apigateway),
                    "REST APIs",
                    "apigateway:GetRestApis",
                    || {
                        self.apigateway
                            .get_rest_apis()
                            .limit(500)
                            .set_position(position.clone())
                            .send()
                    },
                )
                .await
            },
            |page| {
                if page.items().is_empty() {
                    None
                } else {
                    page.position()
                }
            },
        )
        .await?;
        for page in pages {
            for api in page.items() {
                let t: BTreeMap<String, String> = api
                    .tags()
                    .map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default();
                if Owner::from_tags(stack, &t) != Owner::ThisStack {
                    continue;
                }
                let address = t
                    .get(tags::ADDRESS)
                    .and_then(|a| a.parse::<Address>().ok())
                    .filter(|a| a.kind == ResourceKind::HttpApi);
                if let (Some(address), Some(id)) = (address, api.id()) {
                    owned.push((address, id.to_owned(), api.clone(), t));
                }
            }
        }
        owned.sort_by(|a, b| {
            (&a.0, a.2.created_date().map(|d| d.secs()), &a.1).cmp(&(
                &b.0,
                b.2.created_date().map(|d| d.secs()),
                &b.1,
            ))
        });
        let mut seen = std::collections::BTreeSet::new();
        for (address, id, _, _) in &mut owned {
            if !seen.insert(address.clone()) {
                *address = Address::new(ResourceKind::HttpApi, format!("{}#{id}", address.name));
            }
        }
        Ok(owned)
    }

    /// The REST APIs the stack owns. APIs of anyone else are never read further: API names
    /// are not unique, so a foreign API with the same name is no collision.
    pub(super) async fn read_apis(
        &self,
        stack: &str,
        account: &str,
        desired: &DesiredGraph,
    ) -> Result<Vec<(Address, LiveResource)>, CloudError> {
        let owned = self.owned_apis(stack).await?;
        let mut out = Vec::new();
        for (address, id, api, t) in owned {
            let want_stage = match desired.get(&address) {
                Some(d) => view::<ApiAttrs>(&address, &d.attrs)?.stage,
                None => String::new(),
            };
            let stages = self
                .call_limited(
                    Some(&self.limits.apigateway),
                    &id,
                    "apigateway:GetStages",
                    || self.apigateway.get_stages().rest_api_id(&id).send(),
                )
                .await?;
            let names: Vec<String> = stages
                .item()
                .iter()
                .filter_map(|s| s.stage_name().map(str::to_owned))
                .collect();
            let stage = if names.contains(&want_stage) {
                want_stage
            } else {
                names.first().cloned().unwrap_or_default()
            };
            let function = self.integrated_function(&id).await?;
            let auth = self.method_auth_of(&id).await?;
            let throttle = self
                .usage_plan_of(&id)
                .await?
                .and_then(|p| p.throttle().cloned())
                .map(|t| Throttle {
                    // API Gateway keeps the rate as a double; scar sets whole numbers.
                    rate_limit: t.rate_limit().round() as u32,
                    burst_limit: u32::try_from(t.burst_limit()).unwrap_or(0),
                });
            let url = invoke_url(&id, &self.region, &stage);
            let mut binary_media_types = api.binary_media_types().to_vec();
            binary_media_types.sort_unstable();
            let mut a = to_attrs(&ApiAttrs {
                name: api.name().unwrap_or_default().to_owned(),
                description: api.description().unwrap_or_default().to_owned(),
                endpoint_type: api
                    .endpoint_configuration()
                    .and_then(|e| e.types().first())
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                binary_media_types,
                stage,
                function,
                auth: auth.to_owned(),
                throttle,
                url: json!(url),
                tags: t,
            });
            let fingerprint = short_hash(&Value::Object(a.clone()).to_string());
            // Read only, for the steps that update or delete it (`id::Api`).
            a.insert("id".into(), json!(id));
            let mut outputs = BTreeMap::new();
            outputs.insert("id".into(), json!(id));
            outputs.insert("url".into(), json!(url));
            outputs.insert(
                "source_arn".into(),
                json!(format!(
                    "arn:aws:execute-api:{}:{account}:{id}/*",
                    self.region
                )),
            );
            out.push((
                address,
                LiveResource {
                    attrs: a,
                    owner: Owner::ThisStack,
                    fingerprint: Some(fingerprint),
                    outputs,
                },
            ));
        }
        Ok(out)
    }

    /// The invoke URL of every HTTP endpoint the stack owns, by address: what `scar ls` and
    /// `scar invoke` need, without reading the rest of the stack.
    ///
    /// # Errors
    /// When API Gateway or STS fails.
    pub async fn http_urls(
        &self,
        desired: &DesiredGraph,
    ) -> Result<BTreeMap<Address, String>, CloudError> {
        let account = self.account_id().await?;
        Ok(self
            .read_apis(&desired.stack, &account, desired)
            .await?
            .into_iter()
            .filter_map(|(a, l)| Some((a, l.outputs.get("url")?.as_str()?.to_owned())))
            .collect())
    }

    /// The function the `{proxy+}` route invokes, or "" when the route or its integration is
    /// missing (an interrupted create): the plan then puts it back.
    async fn integrated_function(&self, id: &str) -> Result<String, CloudError> {
        let Some(proxy) = self.resource_ids(id).await?.remove(PROXY_PATH) else {
            return Ok(String::new());
        };
        let integration = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:GetIntegration",
                || {
                    self.apigateway
                        .get_integration()
                        .rest_api_id(id)
                        .resource_id(&proxy)
                        .http_method("ANY")
                        .send()
                },
            )
            .await;
        match integration {
            Ok(i) => Ok(i
                .uri()
                .and_then(|u| u.split(":function:").nth(1))
                .map(|f| f.trim_end_matches("/invocations").to_owned())
                .unwrap_or_default()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e),
        }
    }

    /// Outputs recorded for `address` by a step of this run (an API's `id`, `url`).
    pub fn created_output(&self, address: &Address, attribute: &str) -> Option<Value> {
        let created = match self.created.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        created.get(address).and_then(|o| o.get(attribute)).cloned()
    }

    fn record_api(&self, address: &Address, id: &str, account: &str, stage: &str) {
        let mut o = Map::new();
        o.insert("id".into(), json!(id));
        o.insert("url".into(), json!(invoke_url(id, &self.region, stage)));
        o.insert(
            "source_arn".into(),
            json!(format!(
                "arn:aws:execute-api:{}:{account}:{id}/*",
                self.region
            )),
        );
        self.record(address.clone(), o);
    }

    /// Keeps the outputs of a resource made during this run for the steps after it.
    /// Outputs recorded earlier for the same address are kept unless named again.
    pub(super) fn record(&self, address: Address, outputs: Map<String, Value>) {
        let mut created = match self.created.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        created.entry(address).or_default().extend(outputs);
    }

    /// Executes a step on an HTTP API.
    pub(super) async fn execute_api(
        &self,
        step: &Step,
        account: &str,
        after: &Map<String, Value>,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let live: Option<id::Api> = view_read(&step.address, before)?;
        let id = live.as_ref().map(|l| l.id.clone()).unwrap_or_default();
        if step.action == Action::Delete {
            self.remove_usage_plan(&id).await?;
            let r = self
                .call_limited(
                    Some(&self.limits.apigateway_delete),
                    &id,
                    "apigateway:DeleteRestApi",
                    || self.apigateway.delete_rest_api().rest_api_id(&id).send(),
                )
                .await;
            return gone_is_fine(r);
        }
        let want: ApiAttrs = view(&step.address, after)?;
        let (name, description, stage, function, auth) = (
            &want.name,
            &want.description,
            &want.stage,
            &want.function,
            want.auth.as_str(),
        );
        let changed =
            |f: &str| step.action == Action::Create || step.changes.iter().any(|c| c.field == f);
        let id = if step.action == Action::Create {
            self.create_api(&want, tags).await?
        } else {
            id
        };
        // The permission step after this one needs the id, whatever happens next.
        self.record_api(&step.address, &id, account, stage);
        if step.action != Action::Create && (changed("name") || changed("description")) {
            let ops = vec![
                gt::PatchOperation::builder()
                    .op(gt::Op::Replace)
                    .path("/name")
                    .value(name)
                    .build(),
                gt::PatchOperation::builder()
                    .op(gt::Op::Replace)
                    .path("/description")
                    .value(description)
                    .build(),
            ];
            self.update_api(&id, ops).await?;
        }
        if changed("binary_media_types") {
            let types = &want.binary_media_types;
            // A new API is read back: the types are sent at create, but an API that did not
            // take them (moto ignores them there) would mangle every binary body.
            let live = if step.action == Action::Create {
                self.call_limited(
                    Some(&self.limits.apigateway),
                    &id,
                    "apigateway:GetRestApi",
                    || self.apigateway.get_rest_api().rest_api_id(&id).send(),
                )
                .await?
                .binary_media_types()
                .to_vec()
            } else {
                live.as_ref()
                    .map(|l| l.binary_media_types.clone())
                    .unwrap_or_default()
            };
            let ops = binary_media_type_ops(&live, types);
            if !ops.is_empty() {
                self.update_api(&id, ops).await?;
            }
        }
        if changed("function") || changed("auth") {
            self.put_routes(&id, function, account, auth, step.action != Action::Create)
                .await?;
        }
        // Binary media types and methods take effect with the next deployment.
        if changed("function")
            || changed("stage")
            || changed("binary_media_types")
            || changed("auth")
        {
            let old_stage = live.as_ref().map_or("", |l| l.stage.as_str());
            self.deploy(&id, stage, old_stage).await?;
        }
        if auth == "api_key" {
            if changed("auth") || changed("throttle") || changed("stage") {
                let key = self
                    .ensure_usage_plan(&id, stage, name, want.throttle.as_ref(), tags)
                    .await?;
                let mut o = Map::new();
                o.insert("api_key_id".into(), json!(key));
                self.record(step.address.clone(), o);
            }
        } else if live.as_ref().is_some_and(|l| l.auth == "api_key") {
            self.remove_usage_plan(&id).await?;
        }
        if step.action != Action::Create && changed("tags") {
            self.retag_api(&step.address, &id, before, tags).await?;
        }
        Ok(())
    }

    /// Creates the REST API (regional, its binary media types and tags set); its id.
    async fn create_api(
        &self,
        want: &ApiAttrs,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, CloudError> {
        let (name, description) = (&want.name, &want.description);
        let out = self
            .call_limited(
                Some(&self.limits.apigateway_create),
                name,
                "apigateway:CreateRestApi",
                || {
                    self.apigateway
                        .create_rest_api()
                        .name(name)
                        .description(description)
                        .endpoint_configuration(
                            gt::EndpointConfiguration::builder()
                                .types(gt::EndpointType::Regional)
                                .build(),
                        )
                        .set_binary_media_types(Some(want.binary_media_types.clone()))
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                },
            )
            .await?;
        Ok(out.id().unwrap_or_default().to_owned())
    }

    /// Deploys API `id` to `stage`, then deletes the stage it was deployed to before (`old`),
    /// if that was another.
    async fn deploy(&self, id: &str, stage: &str, old: &str) -> Result<(), CloudError> {
        self.call_limited(
            Some(&self.limits.apigateway),
            id,
            "apigateway:CreateDeployment",
            || {
                self.apigateway
                    .create_deployment()
                    .rest_api_id(id)
                    .stage_name(stage)
                    .description("deployed by scar")
                    .send()
            },
        )
        .await?;
        if !old.is_empty() && old != stage {
            let r = self
                .call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:DeleteStage",
                    || {
                        self.apigateway
                            .delete_stage()
                            .rest_api_id(id)
                            .stage_name(old)
                            .send()
                    },
                )
                .await;
            gone_is_fine(r)?;
        }
        Ok(())
    }

    /// Sets exactly `tags` on API `id`: stale keys removed, the rest written.
    async fn retag_api(
        &self,
        address: &Address,
        id: &str,
        before: &Map<String, Value>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let arn = format!("arn:aws:apigateway:{}::/restapis/{id}", self.region);
        let stale = stale_tag_keys(address, before, tags)?;
        if !stale.is_empty() {
            self.call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:UntagResource",
                || {
                    self.apigateway
                        .untag_resource()
                        .resource_arn(&arn)
                        .set_tag_keys(Some(stale.clone()))
                        .send()
                },
            )
            .await?;
        }
        self.call_limited(
            Some(&self.limits.apigateway),
            id,
            "apigateway:TagResource",
            || {
                self.apigateway
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
            },
        )
        .await?;
        Ok(())
    }

    /// Applies `ops` to API `id` (`UpdateRestApi`).
    async fn update_api(&self, id: &str, ops: Vec<gt::PatchOperation>) -> Result<(), CloudError> {
        self.call_limited(
            Some(&self.limits.apigateway),
            id,
            "apigateway:UpdateRestApi",
            || {
                self.apigateway
                    .update_rest_api()
                    .rest_api_id(id)
                    .set_patch_operations(Some(ops.clone()))
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    /// `ANY /` and `ANY /{proxy+}`, each a Lambda proxy integration of `function` that passes
    /// `X-Amz-Invocation-Type` through, callable as `auth` says. Safe to repeat. With
    /// `replace`, each method is deleted first: a method's authorization cannot be changed by
    /// putting it again (AWS answers a conflict), and `UpdateMethod` is not in moto.
    async fn put_routes(
        &self,
        id: &str,
        function: &str,
        account: &str,
        auth: &str,
        replace: bool,
    ) -> Result<(), CloudError> {
        let resources = self.resource_ids(id).await?;
        let find = |path: &str| resources.get(path).cloned();
        let root = find("/").ok_or_else(|| {
            CloudError::new(
                ErrorKind::Other,
                "apigateway:GetResources",
                format!("API {id} has no root resource"),
            )
        })?;
        let proxy = match find(PROXY_PATH) {
            Some(p) => p,
            None => self
                .call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:CreateResource",
                    || {
                        self.apigateway
                            .create_resource()
                            .rest_api_id(id)
                            .parent_id(&root)
                            .path_part("{proxy+}")
                            .send()
                    },
                )
                .await?
                .id()
                .unwrap_or_default()
                .to_owned(),
        };
        let uri = format!(
            "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/arn:aws:lambda:{region}:{account}:function:{function}/invocations",
            region = self.region
        );
        let (authorization, key_required) = method_auth(auth);
        for resource in [&root, &proxy] {
            if replace {
                let r = self
                    .call_limited(
                        Some(&self.limits.apigateway),
                        id,
                        "apigateway:DeleteMethod",
                        || {
                            self.apigateway
                                .delete_method()
                                .rest_api_id(id)
                                .resource_id(resource)
                                .http_method("ANY")
                                .send()
                        },
                    )
                    .await;
                gone_is_fine(r)?;
            }
            let r = self
                .call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:PutMethod",
                    || {
                        self.apigateway
                            .put_method()
                            .rest_api_id(id)
                            .resource_id(resource)
                            .http_method("ANY")
                            .authorization_type(authorization)
                            .api_key_required(key_required)
                            .request_parameters(
                                format!("method.request.header.{INVOCATION_TYPE}"),
                                false,
                            )
                            .send()
                    },
                )
                .await;
            match r {
                Ok(_) => {}
                // Left by an interrupted run: the integration below is what matters.
                Err(e) if e.kind == ErrorKind::Conflict => {}
                Err(e) => return Err(e),
            }
            self.call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:PutIntegration",
                || {
                    self.apigateway
                        .put_integration()
                        .rest_api_id(id)
                        .resource_id(resource)
                        .http_method("ANY")
                        .r#type(gt::IntegrationType::AwsProxy)
                        .integration_http_method("POST")
                        .uri(&uri)
                        .request_parameters(
                            format!("integration.request.header.{INVOCATION_TYPE}"),
                            format!("method.request.header.{INVOCATION_TYPE}"),
                        )
                        .send()
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// API Gateway's authorization type and API-key flag for an `auth` attribute.
/// The `http_api` kind: a REST API with its stage, routes and usage plan.
pub(super) struct Api;

impl Adapter for Api {
    const READ: Read = Read::Apis;

    async fn write(cloud: &AwsCloud, w: &Write<'_>) -> Result<(), CloudError> {
        cloud
            .execute_api(w.step, w.account, w.after, w.before, w.tags)
            .await
    }

    async fn owner(cloud: &AwsCloud, c: &Check<'_>) -> Result<Owner, CloudError> {
        let a: id::Api = view(&c.step.address, c.before)?;
        let out = cloud
            .call_limited(
                Some(&cloud.limits.apigateway),
                &a.id,
                "apigateway:GetRestApi",
                || cloud.apigateway.get_rest_api().rest_api_id(&a.id).send(),
            )
            .await?;
        let t: BTreeMap<String, String> = out
            .tags()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Owner::from_tags(c.stack, &t))
    }

    async fn adopt(_: &AwsCloud, a: &Adopt<'_>) -> Result<(), CloudError> {
        Err(a.never())
    }

    /// The API's id is AWS's choice: known once its step ran.
    fn resolve(cloud: &AwsCloud, name: &str, attribute: &str, _: &str) -> Option<Value> {
        cloud.created_output(&Address::new(ResourceKind::HttpApi, name), attribute)
    }
}

fn method_auth(auth: &str) -> (&'static str, bool) {
    match auth {
        "iam" => ("AWS_IAM", false),
        "api_key" => ("NONE", true),
        _ => ("NONE", false),
    }
}

impl AwsCloud {
    /// How API `id`'s root method is called: `iam`, `api_key` or `none` (also when the
    /// method is missing, an interrupted create that the plan puts back).
    async fn method_auth_of(&self, id: &str) -> Result<&'static str, CloudError> {
        let Some(root) = self.resource_ids(id).await?.remove("/") else {
            return Ok("none");
        };
        let method = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:GetMethod",
                || {
                    self.apigateway
                        .get_method()
                        .rest_api_id(id)
                        .resource_id(&root)
                        .http_method("ANY")
                        .send()
                },
            )
            .await;
        Ok(match method {
            Ok(m) if m.authorization_type() == Some("AWS_IAM") => "iam",
            Ok(m) if m.api_key_required() == Some(true) => "api_key",
            Ok(_) => "none",
            Err(e) if e.kind == ErrorKind::NotFound => "none",
            Err(e) => return Err(e),
        })
    }

    /// The usage plan that serves API `id` (scar makes one per API with `auth: apiKey`).
    async fn usage_plan_of(&self, id: &str) -> Result<Option<gt::UsagePlan>, CloudError> {
        let pages = pages(
            "apigateway:GetUsagePlans",
            |position| async move {
                self.call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:GetUsagePlans",
                    || {
                        self.apigateway
                            .get_usage_plans()
                            .limit(500)
                            .set_position(position.clone())
                            .send()
                    },
                )
                .await
            },
            |page| {
                if page.items().is_empty() {
                    None
                } else {
                    page.position()
                }
            },
        )
        .await?;
        Ok(pages
            .iter()
            .flat_map(|p| p.items())
            .find(|p| p.api_stages().iter().any(|s| s.api_id() == Some(id)))
            .cloned())
    }

    /// Makes sure API `id`'s stage is served by a usage plan with `throttle` and one API key;
    /// answers the key's id (its value stays in API Gateway: `aws apigateway get-api-key
    /// --api-key ID --include-value`).
    async fn ensure_usage_plan(
        &self,
        id: &str,
        stage: &str,
        name: &str,
        throttle: Option<&Throttle>,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, CloudError> {
        let settings = throttle.map(|t| {
            gt::ThrottleSettings::builder()
                .rate_limit(f64::from(t.rate_limit))
                .burst_limit(i32::try_from(t.burst_limit).unwrap_or(i32::MAX))
                .build()
        });
        let plan = match self.usage_plan_of(id).await? {
            Some(p) => {
                let mut ops = Vec::new();
                let here = format!("{id}:{stage}");
                for s in p.api_stages() {
                    let at = format!(
                        "{}:{}",
                        s.api_id().unwrap_or_default(),
                        s.stage().unwrap_or_default()
                    );
                    if s.api_id() == Some(id) && at != here {
                        ops.push(patch(gt::Op::Remove, "/apiStages", &at));
                    }
                }
                if !p
                    .api_stages()
                    .iter()
                    .any(|s| s.api_id() == Some(id) && s.stage() == Some(stage))
                {
                    ops.push(patch(gt::Op::Add, "/apiStages", &here));
                }
                if let Some(t) = &settings {
                    let rate = t.rate_limit().to_string();
                    let burst = t.burst_limit().to_string();
                    ops.push(patch(gt::Op::Replace, "/throttle/rateLimit", &rate));
                    ops.push(patch(gt::Op::Replace, "/throttle/burstLimit", &burst));
                }
                let plan_id = p.id().unwrap_or_default().to_owned();
                if !ops.is_empty() {
                    self.call_limited(
                        Some(&self.limits.apigateway),
                        id,
                        "apigateway:UpdateUsagePlan",
                        || {
                            self.apigateway
                                .update_usage_plan()
                                .usage_plan_id(&plan_id)
                                .set_patch_operations(Some(ops.clone()))
                                .send()
                        },
                    )
                    .await?;
                }
                plan_id
            }
            None => self
                .call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:CreateUsagePlan",
                    || {
                        self.apigateway
                            .create_usage_plan()
                            .name(name)
                            .description("scar: the callers of this function's HTTP endpoint")
                            .api_stages(gt::ApiStage::builder().api_id(id).stage(stage).build())
                            .set_throttle(settings.clone())
                            .set_tags(Some(tags.clone().into_iter().collect()))
                            .send()
                    },
                )
                .await?
                .id()
                .unwrap_or_default()
                .to_owned(),
        };
        let keys = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:GetUsagePlanKeys",
                || {
                    self.apigateway
                        .get_usage_plan_keys()
                        .usage_plan_id(&plan)
                        .send()
                },
            )
            .await?;
        if let Some(k) = keys.items().first().and_then(|k| k.id()) {
            return Ok(k.to_owned());
        }
        let key = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:CreateApiKey",
                || {
                    self.apigateway
                        .create_api_key()
                        .name(name)
                        .enabled(true)
                        .set_tags(Some(tags.clone().into_iter().collect()))
                        .send()
                },
            )
            .await?
            .id()
            .unwrap_or_default()
            .to_owned();
        self.call_limited(
            Some(&self.limits.apigateway),
            id,
            "apigateway:CreateUsagePlanKey",
            || {
                self.apigateway
                    .create_usage_plan_key()
                    .usage_plan_id(&plan)
                    .key_id(&key)
                    .key_type("API_KEY")
                    .send()
            },
        )
        .await?;
        Ok(key)
    }

    /// Deletes the usage plan serving API `id` and its API keys, if any.
    async fn remove_usage_plan(&self, id: &str) -> Result<(), CloudError> {
        let Some(plan) = self.usage_plan_of(id).await? else {
            return Ok(());
        };
        let plan_id = plan.id().unwrap_or_default().to_owned();
        let keys = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:GetUsagePlanKeys",
                || {
                    self.apigateway
                        .get_usage_plan_keys()
                        .usage_plan_id(&plan_id)
                        .send()
                },
            )
            .await?;
        for k in keys.items().iter().filter_map(|k| k.id()) {
            let r = self
                .call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:DeleteApiKey",
                    || self.apigateway.delete_api_key().api_key(k).send(),
                )
                .await;
            gone_is_fine(r)?;
        }
        let stages: Vec<gt::PatchOperation> = plan
            .api_stages()
            .iter()
            .map(|s| {
                patch(
                    gt::Op::Remove,
                    "/apiStages",
                    &format!(
                        "{}:{}",
                        s.api_id().unwrap_or_default(),
                        s.stage().unwrap_or_default()
                    ),
                )
            })
            .collect();
        if !stages.is_empty() {
            let r = self
                .call_limited(
                    Some(&self.limits.apigateway),
                    id,
                    "apigateway:UpdateUsagePlan",
                    || {
                        self.apigateway
                            .update_usage_plan()
                            .usage_plan_id(&plan_id)
                            .set_patch_operations(Some(stages.clone()))
                            .send()
                    },
                )
                .await;
            gone_is_fine(r)?;
        }
        let r = self
            .call_limited(
                Some(&self.limits.apigateway),
                id,
                "apigateway:DeleteUsagePlan",
                || {
                    self.apigateway
                        .delete_usage_plan()
                        .usage_plan_id(&plan_id)
                        .send()
                },
            )
            .await;
        gone_is_fine(r).map(|_| ())
    }
}

fn patch(op: gt::Op, path: &str, value: &str) -> gt::PatchOperation {
    gt::PatchOperation::builder()
        .op(op)
        .path(path)
        .value(value)
        .build()
}

/// The patch that turns an API's binary media types from `live` into `want`: each type is in
/// the path with `/` escaped as `~1` (JSON Pointer), as AWS reads it, and in the value too,
/// which moto reads.
fn binary_media_type_ops(live: &[String], want: &[String]) -> Vec<gt::PatchOperation> {
    let op = |op: gt::Op, t: &str| {
        gt::PatchOperation::builder()
            .op(op)
            .path(format!(
                "/binaryMediaTypes/{}",
                t.replace('~', "~0").replace('/', "~1")
            ))
            .value(t)
            .build()
    };
    live.iter()
        .filter(|t| !want.contains(t))
        .map(|t| op(gt::Op::Remove, t))
        .chain(
            want.iter()
                .filter(|t| !live.contains(t))
                .map(|t| op(gt::Op::Add, t)),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_media_types_patch_escapes_the_type_in_the_path() {
        let ops = binary_media_type_ops(&["image/png".into()], &["*/*".into()]);
        let shown: Vec<(String, String, String)> = ops
            .iter()
            .map(|o| {
                (
                    o.op().map(|x| x.as_str().to_owned()).unwrap_or_default(),
                    o.path().unwrap_or_default().to_owned(),
                    o.value().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "remove".into(),
                    "/binaryMediaTypes/image~1png".into(),
                    "image/png".into()
                ),
                ("add".into(), "/binaryMediaTypes/*~1*".into(), "*/*".into()),
            ]
        );
        assert!(binary_media_type_ops(&["*/*".into()], &["*/*".into()]).is_empty());
    }
}
