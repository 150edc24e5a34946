//! Queued inputs (`input[].queue`) against moto: the queue, its dead-letter queue with the
//! redrive policy, the queue policy that lets exactly the input's bucket send, the bucket's
//! notification entry to the queue and the event source mapping, created, read back (an empty
//! plan), drifted and healed, held by `pause`, their dead-lettered inputs listed by `failures`
//! and moved back by `retry`, and removed when the input stops being queued.
//!
//! The test plays SQS's part where moto cannot: moto's mapping invokes the function in Docker
//! (absent here), so no event is ever dead-lettered by a run; the test puts an S3 event in the
//! dead-letter queue itself, as SQS moves one there after `maxReceives` receives.

use crate::failures::{plan, write};
use crate::support::moto::Moto;
use crate::support::{ok, stderr, stdout};

const QUEUED: &str = "      queue:
        maxConcurrency: 5
        maxReceives: 4
";

fn queue_name() -> String {
    let input = scar::manifest::types::S3Input {
        bucket: "books-scans".into(),
        prefix: Some("pages/".into()),
        suffix: None,
        events: None,
        queue: Some(Default::default()),
    };
    scar::model::queues::queue_name("books", "ocr", &input)
}

async fn sqs(moto: &Moto) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto.sdk().await)
}

async fn url(sqs: &aws_sdk_sqs::Client, name: &str) -> Option<String> {
    sqs.get_queue_url()
        .queue_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.queue_url().map(str::to_owned))
}

/// The queue's attributes that scar sets.
async fn attributes(sqs: &aws_sdk_sqs::Client, name: &str) -> serde_json::Value {
    use aws_sdk_sqs::types::QueueAttributeName as Qa;
    let u = url(sqs, name).await.expect("the queue");
    let a = sqs
        .get_queue_attributes()
        .queue_url(u)
        .attribute_names(Qa::All)
        .send()
        .await
        .expect("attributes");
    let a = a.attributes().cloned().unwrap_or_default();
    let get = |n: Qa| a.get(&n).cloned().unwrap_or_default();
    serde_json::json!({
        "visibility": get(Qa::VisibilityTimeout),
        "retention": get(Qa::MessageRetentionPeriod),
        "redrive": serde_json::from_str::<serde_json::Value>(&get(Qa::RedrivePolicy)).unwrap_or_default(),
        "policy": serde_json::from_str::<serde_json::Value>(&get(Qa::Policy)).unwrap_or_default(),
    })
}

/// The mappings reading the queue: `(enabled, batch size, max concurrency, reports items)`.
async fn mappings(moto: &Moto, queue_arn: &str) -> Vec<(bool, i32, Option<i32>, bool)> {
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let out = lambda
        .list_event_source_mappings()
        .event_source_arn(queue_arn)
        .send()
        .await
        .expect("mappings");
    out.event_source_mappings()
        .iter()
        .map(|m| {
            (
                m.state() != Some("Disabled"),
                m.batch_size().unwrap_or_default(),
                m.scaling_config().and_then(|s| s.maximum_concurrency()),
                !m.function_response_types().is_empty(),
            )
        })
        .collect()
}

/// `(id, target ARN)` of each queue entry of the bucket's notification configuration, and the
/// count of its Lambda entries.
async fn notifications(moto: &Moto) -> (Vec<(String, String)>, usize) {
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    let n = s3
        .get_bucket_notification_configuration()
        .bucket("books-scans")
        .send()
        .await
        .expect("notifications");
    (
        n.queue_configurations()
            .iter()
            .map(|q| {
                (
                    q.id().unwrap_or_default().to_owned(),
                    q.queue_arn().to_owned(),
                )
            })
            .collect(),
        n.lambda_function_configurations().len(),
    )
}

/// An S3 event for `key`, as S3 sends it to the queue.
fn s3_event(key: &str) -> String {
    serde_json::json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "books-scans"},
        "object": {"key": key, "size": 1}}}]})
    .to_string()
}

/// The bodies of the messages in queue `name` (up to 10, received and shown again at once).
async fn bodies(sqs: &aws_sdk_sqs::Client, name: &str) -> Vec<String> {
    let u = url(sqs, name).await.expect("the queue");
    let got = sqs
        .receive_message()
        .queue_url(&u)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .expect("receive");
    got.messages()
        .iter()
        .map(|m| m.body().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_input_is_applied_read_back_healed_paused_redriven_and_removed() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), QUEUED);
    let name = queue_name();
    let dlq = format!("{name}-dlq");

    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    for created in [
        format!("+ queue \"{name}\""),
        format!("+ queue \"{dlq}\""),
        format!("+ event_source_mapping \"{name}\""),
    ] {
        assert!(text.contains(&created), "{created}:\n{text}");
    }
    // Lambda does not invoke a queued input's function asynchronously: no permission for
    // the bucket, no failure policy.
    assert!(
        !text.contains("lambda_permission") && !text.contains("invoke_config"),
        "{text}"
    );
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));

    let sqs = sqs(&moto).await;
    let arn = |n: &str| format!("arn:aws:sqs:us-east-1:123456789012:{n}");
    let a = attributes(&sqs, &name).await;
    // Six times the function's timeout (300 s); SQS's longest retention.
    assert_eq!(a["visibility"], "1800", "{a}");
    assert_eq!(a["retention"], "1209600", "{a}");
    assert_eq!(a["redrive"]["deadLetterTargetArn"], arn(&dlq), "{a}");
    assert_eq!(
        a["redrive"]["maxReceiveCount"]
            .to_string()
            .trim_matches('"'),
        "4"
    );
    let statement = &a["policy"]["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "s3.amazonaws.com", "{a}");
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        "arn:aws:s3:::books-scans"
    );
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );
    assert!(url(&sqs, &dlq).await.is_some(), "the dead-letter queue");
    assert_eq!(
        mappings(&moto, &arn(&name)).await,
        [(true, 1, Some(5), true)]
    );
    let (queues, lambdas) = notifications(&moto).await;
    assert_eq!(lambdas, 0);
    assert_eq!(queues.len(), 1, "{queues:?}");
    assert!(queues[0].0.starts_with("scar.books.ocr."), "{queues:?}");
    assert_eq!(queues[0].1, arn(&name));
    // The managed role may read exactly that queue (Lambda reads it with the role).
    let doc = crate::failures::role_policy(&moto).await;
    assert!(
        doc.contains("ReadQueuedInputs")
            && doc.contains(&arn(&name))
            && doc.contains("sqs:ReceiveMessage"),
        "{doc}"
    );
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "read back, nothing to do:\n{text}");

    // Drifted out of band: the queue's visibility shortened and its policy widened to any
    // bucket, the mapping turned off, the bucket's entry removed. The plan sees each; apply
    // heals them.
    let u = url(&sqs, &name).await.expect("queue");
    let widened = serde_json::to_string(&a["policy"])
        .expect("json")
        .replace("arn:aws:s3:::books-scans", "arn:aws:s3:::*");
    sqs.set_queue_attributes()
        .queue_url(&u)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "10",
        )
        .attributes(aws_sdk_sqs::types::QueueAttributeName::Policy, widened)
        .send()
        .await
        .expect("drift the queue");
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk().await);
    let uuid = lambda
        .list_event_source_mappings()
        .event_source_arn(arn(&name))
        .send()
        .await
        .expect("mappings")
        .event_source_mappings()[0]
        .uuid()
        .expect("uuid")
        .to_owned();
    lambda
        .update_event_source_mapping()
        .uuid(&uuid)
        .enabled(false)
        .send()
        .await
        .expect("drift the mapping");
    let s3 = crate::support::moto::s3(&moto.sdk().await);
    s3.put_bucket_notification_configuration()
        .bucket("books-scans")
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .expect("drift the bucket");
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("~ visibility_timeout = 10 -> 1800"), "{text}");
    assert!(
        text.contains("~ sender_bucket = \"*\" -> \"books-scans\""),
        "{text}"
    );
    assert!(text.contains("~ enabled = false -> true"), "{text}");
    assert!(text.contains("+ s3_trigger"), "{text}");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert_eq!(attributes(&sqs, &name).await, a);
    assert_eq!(
        mappings(&moto, &arn(&name)).await,
        [(true, 1, Some(5), true)]
    );
    assert_eq!(notifications(&moto).await.0.len(), 1);
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "healed:\n{text}");

    // Paused: the mapping is off (the queue's events wait, counting no receive), and plans
    // keep it off.
    ok(&moto.scar(dir.path(), &["pause", ".", "ocr"]));
    assert_eq!(
        mappings(&moto, &arn(&name)).await,
        [(false, 1, Some(5), true)]
    );
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("paused since"), "{text}");

    // Two inputs failed `maxReceives` times: SQS moved them to the dead-letter queue (the
    // test does).
    let dlq_url = url(&sqs, &dlq).await.expect("dlq");
    for key in ["pages/7.tif", "pages/a+b.tif"] {
        sqs.send_message()
            .queue_url(&dlq_url)
            .message_body(s3_event(key))
            .send()
            .await
            .expect("dead-letter it");
    }
    let out = moto.scar(dir.path(), &["failures", ".", "--json"]);
    ok(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let failures = listed["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2, "{listed}");
    let mut inputs: Vec<&str> = failures
        .iter()
        .filter_map(|f| f["input"].as_str())
        .collect();
    inputs.sort_unstable();
    assert_eq!(
        inputs,
        [
            "s3://books-scans/pages/7.tif",
            "s3://books-scans/pages/a+b.tif"
        ]
    );
    for f in failures {
        assert_eq!(f["function"], "ocr");
        assert_eq!(f["attempts"], 4);
        assert_eq!(f["condition"], "DeadLettered");
        assert!(
            f["record"]
                .as_str()
                .is_some_and(|r| r.starts_with(&format!("sqs://{dlq}/"))),
            "{f}"
        );
    }
    // Listing took nothing off the queue: a second listing sees the same.
    let again = moto.scar(dir.path(), &["failures", "."]);
    ok(&again);
    assert!(
        stdout(&again).contains("2 failed input(s)"),
        "{}",
        stdout(&again)
    );

    // One retried: moved back to its queue, exactly that one; the dry run moves none.
    let dry = moto.scar(
        dir.path(),
        &["retry", ".", "ocr", "--input", "pages/a b.tif", "--dry-run"],
    );
    ok(&dry);
    assert!(
        stdout(&dry).contains("1 input(s) would be retried"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(bodies(&sqs, &dlq).await.len(), 2);
    let out = moto.scar(
        dir.path(),
        &["retry", ".", "ocr", "--input", "pages/a b.tif"],
    );
    ok(&out);
    assert!(
        stdout(&out).contains("1 queued input(s) moved back"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let left = bodies(&sqs, &dlq).await;
    assert_eq!(
        left,
        [s3_event("pages/7.tif")],
        "the other stays dead-lettered"
    );
    let queued = bodies(&sqs, &name).await;
    assert!(
        queued.contains(&s3_event("pages/a+b.tif")),
        "back in its queue: {queued:?}"
    );
    ok(&moto.scar(dir.path(), &["resume", ".", "ocr"]));
    assert_eq!(
        mappings(&moto, &arn(&name)).await,
        [(true, 1, Some(5), true)]
    );

    // No longer queued: the queues and the mapping go, the entry invokes the function again
    // (through the permission it now needs), and the next plan is empty.
    write(dir.path(), "");
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(2), "{text}");
    for deleted in [
        format!("- queue \"{name}\""),
        format!("- queue \"{dlq}\""),
        format!("- event_source_mapping \"{name}\""),
    ] {
        assert!(text.contains(&deleted), "{deleted}:\n{text}");
    }
    assert!(text.contains("+ lambda_permission"), "{text}");
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    assert!(url(&sqs, &name).await.is_none() && url(&sqs, &dlq).await.is_none());
    assert!(mappings(&moto, &arn(&name)).await.is_empty());
    assert_eq!(notifications(&moto).await, (Vec::new(), 1));
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_stacks_queue_under_the_same_prefix_is_left_alone() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), QUEUED);
    ok(&moto.scar(dir.path(), &["apply", ".", "--auto-approve"]));
    // Stack `books-2`'s queue starts with `scar-books-`, and a queue nobody tagged too.
    let sqs = sqs(&moto).await;
    sqs.create_queue()
        .queue_name("scar-books-2-ocr-00000000")
        .tags("scar:stack", "books-2")
        .tags("scar:managed-by", "scar")
        .send()
        .await
        .expect("another stack's queue");
    sqs.create_queue()
        .queue_name("scar-books-by-hand")
        .send()
        .await
        .expect("a queue made by hand");
    let (code, text) = plan(&moto, dir.path());
    assert_eq!(code, Some(0), "{text}");
    // Destroyed: the stack's queues go, the others stay.
    ok(&moto.scar(dir.path(), &["destroy", ".", "--auto-approve"]));
    let name = queue_name();
    assert!(url(&sqs, &name).await.is_none());
    assert!(url(&sqs, &format!("{name}-dlq")).await.is_none());
    assert!(url(&sqs, "scar-books-2-ocr-00000000").await.is_some());
    assert!(url(&sqs, "scar-books-by-hand").await.is_some());
}
