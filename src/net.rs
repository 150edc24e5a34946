//! One HTTP(S) POST, for what scar sends to an address a user names (a function URL, an API
//! Gateway endpoint, a webhook): system TLS roots, HTTP/1.1, nothing added but the headers
//! given.

use http_body_util::BodyExt as _;

/// POSTs `body` to `url` with `headers`; the status and the answer's body, of at most
/// `max_answer` bytes (an address a user names decides how much it sends back).
///
/// # Errors
/// A message naming the URL when TLS roots cannot be loaded, the request cannot be made or
/// sent, or the answer cannot be read or is longer than `max_answer`.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    max_answer: usize,
) -> Result<(u16, Vec<u8>), String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| format!("TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Full<hyper::body::Bytes>>(connector);
    let mut req = hyper::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| format!("POST {url}: {e}"))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = http_body_util::Limited::new(resp.into_body(), max_answer)
        .collect()
        .await
        .map_err(|e| format!("reading the answer of {url} (at most {max_answer} bytes): {e}"))?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}
