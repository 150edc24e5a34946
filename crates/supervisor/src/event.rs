//! What an invocation asks for, from the event's shape: S3 event notifications (every record),
//! SQS messages whose bodies are S3 event notifications (a queued input's event source
//! mapping), HTTP requests (API Gateway REST proxy requests, and the 2.0 payload of HTTP APIs and
//! function URLs), direct invocations (as `scar run` and `scar invoke` send them) and Batch
//! jobs (the event the delegating function handed over, in `SCAR_EVENT`).

use serde_json::Value;

/// One S3 object to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Bucket.
    pub bucket: String,
    /// Key (decoded).
    pub key: String,
}

/// The work of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// S3 objects, each processed on its own.
    Objects(Vec<Object>),
    /// SQS messages, each carrying S3 event notifications: a message whose objects all
    /// succeed is done, one that fails goes back to its queue (`batchItemFailures`).
    Queued(Vec<Message>),
    /// An HTTP request: its body is the input file; the script's output is the response.
    Http {
        /// The request body, decoded.
        body: Vec<u8>,
        /// `GET`, `POST`...
        method: String,
        /// The path after the stage.
        path: String,
    },
    /// Bytes given directly: the input file.
    Data(Vec<u8>),
    /// Nothing to stage: the script runs with no input file.
    Nothing,
    /// A sweep (`{"scar-sweep": {}}`, from the function's schedule): its failure records run
    /// again, each with the event it failed on.
    Sweep,
}

/// One SQS message of a queued input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its `messageId`, what `batchItemFailures` names.
    pub id: String,
    /// The objects its body's S3 event names (none for S3's test event), or why the body is
    /// not an S3 event.
    pub objects: Result<Vec<Object>, String>,
}

/// The objects of an S3 event notification's records.
fn s3_objects(records: &[Value]) -> Vec<Object> {
    records
        .iter()
        .filter_map(|r| {
            let s3 = r.get("s3")?;
            Some(Object {
                bucket: s3.pointer("/bucket/name")?.as_str()?.to_owned(),
                key: decode_key(s3.pointer("/object/key")?.as_str()?),
            })
        })
        .collect()
}

/// An SQS record as a queued input's message: its body is an S3 event notification, or the
/// test event S3 sends when a notification is put (nothing to do).
fn message(record: &Value) -> Message {
    let id = record
        .get("messageId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let objects = match serde_json::from_str::<Value>(body) {
        Err(e) => Err(format!("its body is not JSON: {e}")),
        Ok(b) if b.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") => Ok(Vec::new()),
        Ok(b) => match b.get("Records").and_then(Value::as_array) {
            Some(records) => match s3_objects(records) {
                o if o.is_empty() => Err("its body's Records name no S3 object".to_owned()),
                o => Ok(o),
            },
            None => Err("its body is not an S3 event notification".to_owned()),
        },
    };
    Message { id, objects }
}

/// An invocation, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// What to process.
    pub work: Work,
    /// A script given in the event instead of the function's.
    pub script: Option<String>,
    /// Arguments for the script.
    pub args: Vec<String>,
}

/// An event that is none of the known shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event shape: {0}")]
pub struct UnknownEvent(pub String);

/// S3 event keys are URL-encoded, with `+` for a space.
#[must_use]
pub fn decode_key(key: &str) -> String {
    scar_contract::text::percent_decode(key)
}

fn base64(s: &str) -> Result<Vec<u8>, UnknownEvent> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| UnknownEvent(format!("a body marked base64 is not: {e}")))
}

/// The method and path of an HTTP request event: API Gateway's REST proxy request
/// (`httpMethod`, `path`), or the 2.0 payload of HTTP APIs and function URLs
/// (`requestContext.http.method`, `rawPath`).
fn http_request(event: &Value) -> Option<(String, String)> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let context = event.get("requestContext")?;
    // The 2.0 payload says so; emulators may add a stray `httpMethod` to it.
    if event.get("version").and_then(Value::as_str) != Some("2.0")
        && let Some(method) = text(event.get("httpMethod"))
    {
        return Some((
            method,
            text(event.get("path")).unwrap_or_else(|| "/".into()),
        ));
    }
    let method = text(context.pointer("/http/method"))?;
    let path = text(event.get("rawPath"))
        .or_else(|| text(context.pointer("/http/path")))
        .unwrap_or_else(|| "/".into());
    Some((method, path))
}

/// Parses an event.
///
/// # Errors
/// When the event has none of the known shapes.
pub fn parse(event: &Value) -> Result<Invocation, UnknownEvent> {
    let script = event
        .get("script")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let args: Vec<String> = event
        .get("args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    let work = if event
        .get(scar_contract::records::SWEEP)
        .is_some_and(Value::is_object)
    {
        Work::Sweep
    } else if let Some(records) = event
        .get("Records")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty() && r.iter().all(sqs))
    {
        Work::Queued(records.iter().map(message).collect())
    } else if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let objects = s3_objects(records);
        if objects.is_empty() {
            return Err(UnknownEvent("Records with no S3 object".into()));
        }
        Work::Objects(objects)
    } else if let Some((method, path)) = http_request(event) {
        let body = match event.get("body").and_then(Value::as_str) {
            None => Vec::new(),
            Some(b) if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
                base64(b)?
            }
            Some(b) => b.as_bytes().to_vec(),
        };
        Work::Http { body, method, path }
    } else if let Some(input) = event.get("input") {
        let one = |v: &Value| {
            Some(Object {
                bucket: v.get("bucket")?.as_str()?.to_owned(),
                key: v.get("key")?.as_str()?.to_owned(),
            })
        };
        let objects: Vec<Object> = match input {
            Value::Array(a) => a.iter().filter_map(one).collect(),
            v => one(v).into_iter().collect(),
        };
        if objects.is_empty() {
            return Err(UnknownEvent("`input` names no bucket and key".into()));
        }
        Work::Objects(objects)
    } else if let Some(d) = event.get("data").and_then(Value::as_str) {
        Work::Data(base64(d)?)
    } else if script.is_some()
        || !args.is_empty()
        || event.as_object().is_some_and(|o| o.is_empty())
    {
        Work::Nothing
    } else {
        let mut shown = event.to_string();
        shown.truncate(200);
        return Err(UnknownEvent(shown));
    };
    Ok(Invocation { work, script, args })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sweep_is_told_by_its_key_and_nothing_else_is_one() {
        assert_eq!(
            parse(&json!({"scar-sweep": {}})).expect("parses").work,
            Work::Sweep
        );
        // Not an object: data for the script, as any other unknown key would be refused.
        assert_ne!(
            parse(&json!({"scar-sweep": true, "data": "AA=="}))
                .expect("parses")
                .work,
            Work::Sweep
        );
    }

    #[test]
    fn s3_records_all_count_and_keys_decode() {
        let e = json!({"Records": [
            {"s3": {"bucket": {"name": "b"}, "object": {"key": "in/my+photo%281%29.jpg"}}},
            {"s3": {"bucket": {"name": "b"}, "object": {"key": "in/b.jpg"}}}
        ]});
        let i = parse(&e).expect("parses");
        assert_eq!(
            i.work,
            Work::Objects(vec![
                Object {
                    bucket: "b".into(),
                    key: "in/my photo(1).jpg".into()
                },
                Object {
                    bucket: "b".into(),
                    key: "in/b.jpg".into()
                },
            ])
        );
    }

    #[test]
    fn sqs_messages_carry_s3_events_or_s3s_test_event() {
        let s3 = json!({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "in/a+b.txt"}}}]});
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"});
        let e = json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": s3.to_string()},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": test.to_string()},
            {"messageId": "m3", "eventSource": "aws:sqs", "body": "not json"},
            {"messageId": "m4", "eventSource": "aws:sqs", "body": "{\"Records\": []}"}
        ]});
        let Work::Queued(m) = parse(&e).expect("parses").work else {
            panic!("not queued");
        };
        assert_eq!(
            m[0],
            Message {
                id: "m1".into(),
                objects: Ok(vec![Object {
                    bucket: "b".into(),
                    key: "in/a b.txt".into()
                }])
            }
        );
        assert_eq!(m[1].objects, Ok(Vec::new()), "nothing to do");
        assert!(m[2].objects.as_ref().is_err_and(|e| e.contains("not JSON")));
        assert!(m[3].objects.is_err());
    }

    #[test]
    fn api_gateway_bodies_decode_when_marked_base64() {
        let e = json!({"httpMethod": "POST", "path": "/x", "requestContext": {},
            "body": "AAEC/w==", "isBase64Encoded": true});
        match parse(&e).expect("parses").work {
            Work::Http { body, method, path } => {
                assert_eq!(body, [0, 1, 2, 255]);
                assert_eq!((method.as_str(), path.as_str()), ("POST", "/x"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_api_and_function_url_payloads_are_http_requests() {
        // cargo-lambda's emulator adds `"httpMethod": "GET"` to the 2.0 payload.
        let e = json!({"version": "2.0", "rawPath": "/img", "body": "AP8=", "isBase64Encoded": true, "httpMethod": "GET",
            "requestContext": {"http": {"method": "PUT", "path": "/img"}}});
        assert_eq!(
            parse(&e).expect("parses").work,
            Work::Http {
                body: vec![0, 255],
                method: "PUT".into(),
                path: "/img".into()
            }
        );
    }

    #[test]
    fn direct_invocations_and_unknown_shapes() {
        assert_eq!(
            parse(&json!({"data": "aGk="})).expect("data").work,
            Work::Data(b"hi".to_vec())
        );
        let i = parse(&json!({"script": "echo hi", "args": ["a", 1]})).expect("script");
        assert_eq!(
            (i.work, i.args),
            (Work::Nothing, vec!["a".to_owned(), "1".to_owned()])
        );
        assert!(parse(&json!({"what": 1})).is_err());
        assert_eq!(decode_key("100%"), "100%");
        assert_eq!(decode_key("a%2"), "a%2");
    }
}
