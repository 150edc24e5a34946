//! The supervisor's one HTTP stack: hyper with rustls (ring), for the AWS SDK clients and for
//! WebDAV alike. Nothing is taken from the image it runs in but its CA bundle, when it has one:
//! the Mozilla roots compiled in (`webpki-roots`, already parsed) are always trusted too, so
//! TLS works in a busybox or scratch-like base that has no bundle at all. The roots are loaded
//! at the first TLS handshake, not before: a cold start that speaks plain HTTP (or none) does
//! not pay for them. A storage provider may turn certificate verification off (`verify:
//! false`, SCAR's MinIO option); nothing else can.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as Tcp;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;

/// The HTTP client type of every request the supervisor makes.
pub type Hyper = Client<hyper_rustls::HttpsConnector<Tcp>, SdkBody>;

/// Where Linux distributions keep their CA bundle (openssl's usual places); the first that
/// exists is read, unless `SSL_CERT_FILE` names one.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The trusted roots, and where they came from.
#[derive(Debug)]
pub struct Roots {
    /// The store.
    pub store: Arc<RootCertStore>,
    /// Roots read from the image's CA bundle.
    pub from_image: usize,
    /// Roots compiled in.
    pub built_in: usize,
}

/// The roots every TLS connection trusts, read once per process.
pub fn roots() -> &'static Roots {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let built_in = store.len();
        let bundle = std::env::var_os("SSL_CERT_FILE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                BUNDLES
                    .iter()
                    .map(std::path::PathBuf::from)
                    .find(|p| p.is_file())
            });
        let from_image = bundle
            .and_then(|p| CertificateDer::pem_file_iter(p).ok())
            .map_or(0, |certs| {
                store.add_parsable_certificates(certs.flatten()).0
            });
        tracing::debug!(built_in, from_image, "TLS trust roots");
        Roots {
            store: Arc::new(store),
            from_image,
            built_in,
        }
    })
}

/// Checks certificates against [`roots`], which it loads at the first handshake.
#[derive(Debug)]
struct LazyRoots {
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: OnceLock<Result<Arc<rustls::client::WebPkiServerVerifier>, String>>,
}

impl LazyRoots {
    fn get(&self) -> Result<&Arc<rustls::client::WebPkiServerVerifier>, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots().store.clone(),
                    self.provider.clone(),
                )
                .build()
                .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| rustls::Error::General(format!("no TLS trust roots: {e}")))
    }
}

impl rustls::client::danger::ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.get()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS configuration: the trusted roots, or, with `verify` false, any certificate (the
/// handshake's signatures are still checked).
fn tls(verify: bool) -> rustls::ClientConfig {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            // ring supports the default versions; this is the documented fallback path only.
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("ring supports TLS 1.3")
        });
    if verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LazyRoots {
                provider,
                verifier: OnceLock::new(),
            }))
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    }
}

/// An HTTP(S) client; `connect_timeout` bounds connecting.
#[must_use]
pub fn client(verify: bool, connect_timeout: Option<Duration>) -> Hyper {
    let mut tcp = Tcp::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls(verify))
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(https)
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connectors made, by connect timeout.
type Made = Arc<std::sync::Mutex<Vec<(Option<Duration>, SharedHttpConnector)>>>;

/// The AWS SDK's HTTP client: [`client`], made once per connect timeout the SDK asks for.
#[derive(Debug, Clone)]
pub struct SdkHttp {
    verify: bool,
    made: Made,
}

impl SdkHttp {
    /// A client that verifies certificates (`verify`), or not.
    #[must_use]
    pub fn new(verify: bool) -> Self {
        SdkHttp {
            verify,
            made: Arc::default(),
        }
    }
}

impl HttpClient for SdkHttp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeout = settings.connect_timeout();
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = made.iter().find(|(t, _)| *t == timeout) {
            return c.clone();
        }
        let c = SharedHttpConnector::new(Connector {
            client: client(self.verify, timeout),
            read_timeout: settings.read_timeout(),
        });
        made.push((timeout, c.clone()));
        c
    }
}

#[derive(Debug)]
struct Connector {
    client: Hyper,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(Box::new(e)))?;
            let sent = client.request(request);
            let response = match read_timeout {
                Some(t) => tokio::time::timeout(t, sent)
                    .await
                    .map_err(|e| ConnectorError::timeout(Box::new(e)))?,
                None => sent.await,
            }
            .map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(Box::new(e), None))
        })
    }
}

/// Connection failures, resets and truncated answers are I/O errors, which the SDK retries.
fn classify(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut io = e.is_connect();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            io |= h.is_closed() || h.is_incomplete_message() || h.is_canceled();
        }
        io |= s.is::<std::io::Error>();
        source = s.source();
    }
    if io {
        ConnectorError::io(Box::new(e))
    } else {
        ConnectorError::other(Box::new(e), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roots_are_trusted_without_a_bundle() {
        let r = roots();
        assert!(
            r.built_in > 100,
            "Mozilla's roots are compiled in: {}",
            r.built_in
        );
        assert!(r.store.len() >= r.built_in);
    }
}
