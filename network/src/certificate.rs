//! X.509 for pinned keys: a node's self-signed certificate (rcgen, signed with its
//! Ed25519 key) and the extraction of the Ed25519 public key from a peer's certificate.
//!
//! Nothing in a certificate but its subject public key matters: names, dates and the
//! self-signature are ignored, because possession of the key is proven by the TLS 1.3
//! CertificateVerify signature, which the verifier checks against the key extracted
//! here. The extraction walks the DER structure to the `subjectPublicKeyInfo` field (it
//! never searches for byte patterns, which a crafted extension could contain).

use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ED25519};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::identity::{Identity, PUBLIC_KEY_LEN, PublicKey};

/// A certificate could not be made for an identity.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a self-signed certificate: {0}")]
pub struct CertificateError(#[from] rcgen::Error);

/// Makes `identity`'s self-signed certificate, naming `subject` (informational only).
pub fn self_signed_certificate(
    identity: &Identity,
    subject: &str,
) -> Result<CertificateDer<'static>, CertificateError> {
    let pkcs8 = PrivatePkcs8KeyDer::from(identity.pkcs8_der());
    let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &PKCS_ED25519)?;
    let mut params = CertificateParams::new(vec![subject.to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, subject);
    let certificate = params.self_signed(&key_pair)?;
    Ok(certificate.der().clone())
}

/// The DER `SubjectPublicKeyInfo` of an Ed25519 key (RFC 8410) up to the key bytes:
/// SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) <32 bytes> }.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The Ed25519 public key of an X.509 certificate, or `None` if the DER is malformed or
/// the key is not Ed25519.
pub fn ed25519_public_key(certificate: &[u8]) -> Option<PublicKey> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const VERSION_TAG: u8 = 0xa0; // [0] EXPLICIT, constructed
    let (certificate, rest) = der_element(certificate, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (tbs, _) = der_element(certificate.content, SEQUENCE)?;
    let mut fields = tbs.content;
    if fields.first() == Some(&VERSION_TAG) {
        fields = der_element(fields, VERSION_TAG)?.1;
    }
    let (_serial, fields) = der_element(fields, INTEGER)?;
    let (_signature_algorithm, fields) = der_element(fields, SEQUENCE)?;
    let (_issuer, fields) = der_element(fields, SEQUENCE)?;
    let (_validity, fields) = der_element(fields, SEQUENCE)?;
    let (_subject, fields) = der_element(fields, SEQUENCE)?;
    let (spki, _) = der_element(fields, SEQUENCE)?;
    let key = spki.whole.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    <[u8; PUBLIC_KEY_LEN]>::try_from(key).ok()
}

/// One DER element: its full encoding and its content.
struct DerElement<'a> {
    whole: &'a [u8],
    content: &'a [u8],
}

/// Reads the element at the start of `input`, which must carry `tag`; returns it and
/// the bytes after it. Definite lengths only, at most 4 length bytes.
fn der_element(input: &[u8], tag: u8) -> Option<(DerElement<'_>, &[u8])> {
    let (&first, after_tag) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length_byte, after_length_byte) = after_tag.split_first()?;
    let (length, after_length) = if length_byte < 0x80 {
        (usize::from(length_byte), after_length_byte)
    } else {
        let count = usize::from(length_byte & 0x7f);
        if count == 0 || count > 4 || after_length_byte.len() < count {
            return None;
        }
        let (bytes, after) = after_length_byte.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, after)
    };
    if after_length.len() < length {
        return None;
    }
    let header_len = input.len() - after_length.len();
    let (content, rest) = after_length.split_at(length);
    Some((
        DerElement {
            whole: &input[..header_len + length],
            content,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_key_the_certificate_was_made_with() {
        let identity = Identity::generate().expect("generate");
        let certificate = self_signed_certificate(&identity, "r1").expect("certificate");
        assert_eq!(
            ed25519_public_key(certificate.as_ref()),
            Some(identity.public_key())
        );
    }

    #[test]
    fn malformed_certificates_yield_no_key() {
        let identity = Identity::generate().expect("generate");
        let certificate = self_signed_certificate(&identity, "r1").expect("certificate");
        let der = certificate.as_ref();
        for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
            assert_eq!(ed25519_public_key(&der[..cut]), None, "cut at {cut}");
        }
        let mut trailing = der.to_vec();
        trailing.push(0);
        assert_eq!(ed25519_public_key(&trailing), None);
        assert_eq!(ed25519_public_key(&[0xff; 64]), None);
        assert_eq!(
            ed25519_public_key(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }
}
