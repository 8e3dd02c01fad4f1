//! Optional TLS for the send endpoint, so benchmarks can measure what TLS costs the client:
//! a self-signed certificate for `localhost` made at start-up, HTTP/2 offered by ALPN.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor and the certificate clients must trust.
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) ca_pem: String,
}

impl Tls {
    /// A fresh self-signed certificate for `localhost` and 127.0.0.1.
    pub(crate) fn self_signed() -> Tls {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).expect("a self-signed certificate");
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("a usable certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Tls { acceptor: TlsAcceptor::from(Arc::new(config)), ca_pem: certified.cert.pem() }
    }
}
