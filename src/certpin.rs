//! TLS for outgoing server links: the peer's certificate is pinned by its SHA-256 fingerprint
//! (`[[links]] fingerprint`), as hybrid's `connect { fingerprint }` and Solanum's certfp do.
//! No CA and no name check: the one certificate the operator named is accepted, any other
//! refused, and the fingerprint seen logged so a changed certificate can be pinned anew.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// A SHA-256 digest.
pub type Fingerprint = [u8; 32];

/// SHA-256 of `data` (a certificate's DER), by rustls's own (ring) hash.
pub fn sha256(data: &[u8]) -> Fingerprint {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let digest = suite.tls13().expect("a TLS 1.3 suite").common.hash_provider.hash(data);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Upper-case hex with colons, as `openssl x509 -fingerprint -sha256` prints it.
pub fn to_hex(fp: &Fingerprint) -> String {
    fp.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// 64 hex digits, either case, colons (or spaces) between them optional.
pub fn parse(text: &str) -> Option<Fingerprint> {
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b':' && *b != b' ').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut fp = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        fp[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(fp)
}

/// The fingerprint of the first certificate of a PEM file (`rustircd --fingerprint`).
pub fn of_pem_file(path: &std::path::Path) -> Result<Fingerprint, String> {
    use rustls::pki_types::pem::PemObject;
    let first = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: cannot read the certificate: {e}", path.display()))?
        .next()
        .ok_or_else(|| format!("{}: no certificate in the file", path.display()))?
        .map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
    Ok(sha256(&first))
}

/// Accepts exactly the certificate whose SHA-256 is `want`; the handshake's signatures are
/// checked as usual (with the provider's algorithms), so the peer holds that certificate's key.
#[derive(Debug)]
pub struct Pinned {
    /// The link's name, for the log.
    link: String,
    want: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = sha256(end_entity);
        if seen == self.want {
            return Ok(ServerCertVerified::assertion());
        }
        log::error!(
            "Link {}: certificate fingerprint mismatch: the peer presented {}, the block's fingerprint is {}",
            self.link,
            to_hex(&seen),
            to_hex(&self.want)
        );
        Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature(&self.provider, 12, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature(&self.provider, 13, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A handshake signature checked with the provider's algorithms (TLS 1.2 or 1.3): the peer
/// holds its certificate's key. Shared by the link pin and the client-certificate verifier.
pub fn signature(
    provider: &CryptoProvider,
    version: u8,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let algs = &provider.signature_verification_algorithms;
    if version == 12 {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    } else {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }
}

/// A client configuration for a link to `link` that trusts only the certificate `want`.
pub fn client_config(link: &str, want: Fingerprint) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned { link: link.to_string(), want, provider: provider.clone() });
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// The name sent as SNI: the link's server name, or the address when the name is not a DNS
/// name rustls accepts.
pub fn server_name(link: &str, addr: SocketAddr) -> ServerName<'static> {
    ServerName::try_from(link.to_string()).unwrap_or(ServerName::IpAddress(addr.ip().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            to_hex(&sha256(b"abc")),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn parse_accepts_colons_and_either_case() {
        let fp = sha256(b"abc");
        let hex = to_hex(&fp);
        assert_eq!(parse(&hex), Some(fp));
        assert_eq!(parse(&hex.replace(':', "").to_lowercase()), Some(fp));
        assert_eq!(parse(&hex[3..]), None, "too short");
        assert_eq!(parse(&format!("{hex}:00")), None, "too long");
        assert_eq!(parse(&hex.replace('B', "G")), None, "not hex");
        assert_eq!(parse(""), None);
    }

    #[test]
    fn sni_is_the_name_or_the_address() {
        let a: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        assert_eq!(server_name("hub.example.net", a), ServerName::try_from("hub.example.net").unwrap());
        assert!(matches!(server_name("bad name", a), ServerName::IpAddress(_)));
    }
}
