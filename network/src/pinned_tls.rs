//! Pinned-key mutual TLS for QUIC: one verifier type, [`PinnedKeyVerifier`], serving as
//! rustls' `ServerCertVerifier` (when dialing) and `ClientCertVerifier` (when accepting),
//! and the rustls/quinn configurations built around it. TLS 1.3 only, Ed25519 only,
//! ALPN [`ALPN`], no session resumption (every handshake verifies the peer's key).
//!
//! A peer is accepted only if the Ed25519 key in its certificate belongs to a member;
//! when dialing a replica, the server's key must be that very replica's key (the server
//! name is the replica's id, e.g. `r3`). Every refusal is counted and logged.
//!
//! The public builders ([`server_config`], [`client_config`]) exist for tools and tests
//! that drive a raw quinn endpoint; [`QuicTransport`](crate::QuicTransport) uses the same
//! code with its own counters.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::NodeId;
use crate::certificate::{self, ed25519_public_key};
use crate::counters::CounterCells;
use crate::identity::{Identity, KeyHex, Membership, PublicKey, verify_signature};

/// The ALPN protocol name of Tandem's wire format.
pub const ALPN: &[u8] = b"tandem/1";

/// TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The self-signed certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] certificate::CertificateError),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The crypto provider lacks the cipher suite QUIC's initial packets need.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// Accepts exactly the members' Ed25519 keys, on both sides of the handshake.
#[derive(Debug)]
pub struct PinnedKeyVerifier {
    membership: Arc<Membership>,
    counters: Arc<CounterCells>,
}

impl PinnedKeyVerifier {
    pub(crate) fn new(membership: Arc<Membership>, counters: Arc<CounterCells>) -> Self {
        Self {
            membership,
            counters,
        }
    }

    /// The member presenting `certificate`, or a counted, logged refusal.
    fn member(&self, certificate: &CertificateDer<'_>) -> Result<NodeId, rustls::Error> {
        let Some(key) = ed25519_public_key(certificate.as_ref()) else {
            self.counters.record_rejected();
            tracing::warn!("refused a peer: certificate without an Ed25519 key");
            return Err(CertificateError::BadEncoding.into());
        };
        match self.membership.id_of(&key) {
            Some(id) => Ok(id),
            None => {
                self.counters.record_rejected();
                tracing::warn!(key = %KeyHex(&key), "refused a peer whose key is not a member");
                Err(CertificateError::ApplicationVerificationFailure.into())
            }
        }
    }

    fn verify_handshake_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoSignatureSchemesInCommon,
            ));
        }
        let key: PublicKey =
            ed25519_public_key(certificate.as_ref()).ok_or(CertificateError::BadEncoding)?;
        if self.membership.id_of(&key).is_none() {
            return Err(CertificateError::ApplicationVerificationFailure.into());
        }
        if verify_signature(&key, message, dss.signature()) {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(CertificateError::BadSignature.into())
        }
    }
}

impl ServerCertVerifier for PinnedKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = self.member(end_entity)?;
        let expected = match server_name {
            ServerName::DnsName(name) => name.as_ref().parse::<NodeId>().ok(),
            _ => None,
        };
        if expected == Some(presented) && presented.is_replica() {
            Ok(ServerCertVerified::assertion())
        } else {
            self.counters.record_rejected();
            tracing::warn!(
                dialed = ?server_name,
                %presented,
                "refused a server presenting another member's key"
            );
            Err(CertificateError::NotValidForName.into())
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PinnedKeyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.member(end_entity)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The authenticated member behind an established quinn connection, from the key in the
/// certificate it presented.
pub fn peer_id(connection: &quinn::Connection, membership: &Membership) -> Option<NodeId> {
    let identity = connection.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let key = ed25519_public_key(chain.first()?.as_ref())?;
    membership.id_of(&key)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificate_and_key(
    identity: &Identity,
    membership: &Membership,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let subject = membership
        .id_of(&identity.public_key())
        .map_or_else(|| "non-member".to_owned(), |id| id.to_string());
    let certificate = certificate::self_signed_certificate(identity, &subject)?;
    let key = PrivatePkcs8KeyDer::from(identity.pkcs8_der().to_vec());
    Ok((vec![certificate], PrivateKeyDer::Pkcs8(key)))
}

pub(crate) fn rustls_server_config(
    identity: &Identity,
    verifier: Arc<PinnedKeyVerifier>,
) -> Result<rustls::ServerConfig, TlsError> {
    let (chain, key) = certificate_and_key(identity, &verifier.membership)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    Ok(config)
}

pub(crate) fn rustls_client_config(
    identity: &Identity,
    verifier: Arc<PinnedKeyVerifier>,
) -> Result<rustls::ClientConfig, TlsError> {
    let (chain, key) = certificate_and_key(identity, &verifier.membership)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// A quinn server configuration presenting `identity` and accepting only members
/// (default quinn transport parameters; refusals are not counted anywhere).
pub fn server_config(
    identity: &Identity,
    membership: Arc<Membership>,
) -> Result<quinn::ServerConfig, TlsError> {
    let verifier = Arc::new(PinnedKeyVerifier::new(membership, Arc::default()));
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(rustls_server_config(
        identity, verifier,
    )?)?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// A quinn client configuration presenting `identity` and accepting only the replica
/// named by the server name it dials (default quinn transport parameters).
pub fn client_config(
    identity: &Identity,
    membership: Arc<Membership>,
) -> Result<quinn::ClientConfig, TlsError> {
    let verifier = Arc::new(PinnedKeyVerifier::new(membership, Arc::default()));
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(rustls_client_config(
        identity, verifier,
    )?)?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}
