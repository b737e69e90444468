//! Certificates (rcgen, ECDSA P-256): the cluster's certificate authority for the clients,
//! and each node's self-signed certificate.
//!
//! `cluster init` creates one CA per cluster and a certificate per client from it. Nodes
//! accept only callers whose certificate chains to the CA (TLS handshake) **and** whose
//! certificate fingerprint ([`fingerprint`]) their config lists: a certificate of the CA
//! alone does not let a caller in.
//!
//! A node's certificate is not the CA's to give: `node init` makes the node's key pair and a
//! self-signed certificate ([`self_signed_node`]: names `node-<id>`, `localhost`,
//! `127.0.0.1` and any host given; valid for about three years) on the node's own machine,
//! and the enrolment manifest ([`crate::manifest`]) pins its fingerprint. Clients accept a
//! node only by that pin, so whoever holds `ca.key` cannot mint a certificate a client would
//! take for a node's, and a replaced node's old certificate stops working when the manifest
//! drops its fingerprint.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// Errors issuing certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// rcgen failed.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A PEM file holds no certificate.
    #[error("no certificate in the PEM data")]
    NoCertificate,
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
    /// [`fingerprint`] of the certificate.
    pub fingerprint: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// A cluster CA able to issue certificates.
pub struct ClusterCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dealer-free-sis");
    dn.push(DnType::CommonName, format!("{name} cluster CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// `sha256:` and the hex SHA-256 of a DER certificate.
#[must_use]
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", crate::hex(&Sha256::digest(der)))
}

/// [`fingerprint`] of the first certificate of a PEM text.
///
/// # Errors
/// [`PkiError::NoCertificate`].
pub fn fingerprint_pem(pem: &str) -> Result<String, PkiError> {
    let der = pem_to_der(pem).ok_or(PkiError::NoCertificate)?;
    Ok(fingerprint(&der))
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem.find(begin)? + begin.len();
    let stop = start + pem.get(start..)?.find(end)?;
    let body: String = pem
        .get(start..stop)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64_decode(&body)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in bytes {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

impl ClusterCa {
    /// A new CA for the cluster `name`.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`].
    pub fn generate(name: &str) -> Result<ClusterCa, PkiError> {
        let key = KeyPair::generate()?;
        let params = ca_params(name)?;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(ClusterCa {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            key_pem,
        })
    }

    /// The CA of the cluster `name` from its certificate and key (as [`ClusterCa::generate`]
    /// wrote them), to issue more certificates (a replacement node, another client).
    ///
    /// # Errors
    /// [`PkiError::Rcgen`] for a key that does not parse.
    pub fn load(name: &str, cert_pem: &str, key_pem: &str) -> Result<ClusterCa, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(ClusterCa {
            issuer: Issuer::new(ca_params(name)?, key),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }

    /// The CA certificate (PEM).
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key (PEM): keep it offline once the cluster is set up.
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    fn issue(
        &self,
        common_name: &str,
        names: &[String],
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "dealer-free-sis");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.clone().try_into()?),
            });
        }
        params.extended_key_usages = usages;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            fingerprint: fingerprint(cert.der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client's certificate.
    ///
    /// # Errors
    /// [`PkiError::Rcgen`].
    pub fn issue_client(&self, name: &str) -> Result<Issued, PkiError> {
        self.issue(name, &[], vec![ExtendedKeyUsagePurpose::ClientAuth])
    }
}

/// The names in node `id`'s certificate: `node-<id>`, `localhost`, `127.0.0.1` and `hosts`.
fn node_names(id: u8, hosts: &[String]) -> Vec<String> {
    let mut names = vec![
        server_name(id),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    for h in hosts {
        if !names.contains(h) && !h.is_empty() && h != "0.0.0.0" && h != "::" {
            names.push(h.clone());
        }
    }
    names
}

/// The current calendar year (UTC), near enough for a certificate's validity.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

/// Node `id`'s own key pair and self-signed server certificate for `node-<id>`, `localhost`,
/// `127.0.0.1` and `hosts`, valid from the start of this year for three years. Clients
/// accept it by its fingerprint in the enrolment manifest, not by any CA.
///
/// # Errors
/// [`PkiError::Rcgen`] for a host name that is no DNS name or IP address.
pub fn self_signed_node(id: u8, hosts: &[String]) -> Result<Issued, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dealer-free-sis");
    dn.push(DnType::CommonName, server_name(id));
    params.distinguished_name = dn;
    for name in node_names(id, hosts) {
        params.subject_alt_names.push(match name.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.try_into()?),
        });
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 3, 1, 1);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        fingerprint: fingerprint(cert.der()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The TLS server name of node `id` (in its certificate; what clients check).
#[must_use]
pub fn server_name(id: u8) -> String {
    format!("node-{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_of_the_pem_is_the_fingerprint_of_the_der() -> Result<(), PkiError> {
        let ca = ClusterCa::generate("t")?;
        let issued = ca.issue_client("owner")?;
        assert_eq!(fingerprint_pem(&issued.cert_pem)?, issued.fingerprint);
        assert!(fingerprint_pem("no pem").is_err());
        let node = self_signed_node(3, &["host.example".into(), "0.0.0.0".into()])?;
        assert_eq!(fingerprint_pem(&node.cert_pem)?, node.fingerprint);
        assert_ne!(self_signed_node(3, &[])?.fingerprint, node.fingerprint);
        Ok(())
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("a$"), None);
    }
}
