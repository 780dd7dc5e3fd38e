//! The cluster's public-key infrastructure: one CA, the API server's
//! serving certificate and the admin client certificate, kept as PEM files
//! in `<data_dir>/pki/`, and the admin kubeconfig that carries them.
//!
//! [`ensure`] creates what is missing on first start and loads it later.
//! The CA is never regenerated once it exists (every credential it issued
//! would silently stop working); leaf certificates are re-issued by the same
//! CA when they are missing, unreadable, do not match their key, no longer
//! chain to the CA, lack a requested SAN, or expire within
//! [`RENEW_BEFORE`].
//!
//! This module owns only files under `<data_dir>/pki/` and the kubeconfig
//! path it is given. The TLS server configuration built from a [`Pki`] lives
//! in [`crate::apiserver::server::tls_config`].

use std::{
    fs,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PublicKeyData, SanType, SerialNumber,
};
use rustls::{
    RootCertStore,
    client::{WebPkiServerVerifier, danger::ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tracing::{info, warn};
use x509_parser::{
    certificate::X509Certificate, der_parser::asn1_rs::Tag, extensions::ParsedExtension,
};

/// Common name of the cluster CA.
pub const CA_COMMON_NAME: &str = "keelson-ca";
/// Common name of the API server's serving certificate (as kubeadm names it).
pub const SERVING_COMMON_NAME: &str = "kube-apiserver";
/// User name in the admin client certificate.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// Group (organization) in the admin client certificate.
pub const ADMIN_GROUP: &str = "system:masters";
/// Names every serving certificate carries, whatever else is requested.
pub const DEFAULT_SANS: [&str; 6] = [
    "localhost",
    "127.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];
/// Cluster name, user name and context name in the admin kubeconfig.
pub const KUBECONFIG_CLUSTER: &str = "keelson";
pub const KUBECONFIG_USER: &str = "admin";
pub const KUBECONFIG_CONTEXT: &str = "keelson";

/// Lifetime of a new CA.
const CA_VALIDITY_YEARS: i16 = 10;
/// Lifetime of a new leaf certificate (capped at the CA's own expiry).
const LEAF_VALIDITY_YEARS: i16 = 1;
/// Leaf certificates expiring sooner than this are re-issued on start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// File names under `<data_dir>/pki/`.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVING_CERT_FILE: &str = "apiserver.crt";
pub const SERVING_KEY_FILE: &str = "apiserver.key";
pub const ADMIN_CERT_FILE: &str = "admin.crt";
pub const ADMIN_KEY_FILE: &str = "admin.key";

const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o700;

/// Failures creating, loading or using the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "the cluster CA is incomplete: {present} exists but {missing} does not; restore the missing \
         file (or remove both to create a new CA, which invalidates every credential it issued)"
    )]
    IncompleteCa { present: PathBuf, missing: PathBuf },
    #[error("the cluster CA {path} expired at {not_after}; it is never replaced automatically")]
    CaExpired { path: PathBuf, not_after: String },
    #[error("invalid subject alternative name {san:?}: {reason}")]
    InvalidSan { san: String, reason: String },
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("rendering kubeconfig: {0}")]
    Kubeconfig(#[from] serde_yaml::Error),
}

/// The cluster's certificates and keys, PEM-encoded.
#[derive(Clone)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// The directory the files live in (`<data_dir>/pki`).
    pub dir: PathBuf,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print private keys.
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Path of the CA certificate file (what clients pass as `--cacert`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join(CA_CERT_FILE)
    }

    /// Issues a client certificate signed by the cluster CA: user
    /// `common_name`, group `organization` (one at most: rcgen holds one
    /// value per subject attribute), valid for a year. Returns
    /// `(certificate_pem, private_key_pem)`; nothing is written to disk.
    pub fn issue_client_certificate(
        &self,
        common_name: &str,
        organization: Option<&str>,
    ) -> Result<(String, String), PkiError> {
        let ca = LoadedCa::from_pem(&self.dir, &self.ca_cert_pem, &self.ca_key_pem)?;
        ca.issue_client(common_name, organization)
    }
}

/// Creates (first start) or loads (later starts) the PKI in `data_dir/pki/`.
///
/// `sans` are extra names for the serving certificate: IP addresses (v4, v6,
/// optionally in brackets) and DNS names. The [`DEFAULT_SANS`] are always
/// included. An existing CA is never replaced; leaf certificates are
/// re-issued by it when needed (see the module docs).
pub fn ensure(data_dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
    let dir = data_dir.join("pki");
    create_private_dir(&dir)?;
    let names = serving_names(sans)?;

    let ca = load_or_create_ca(&dir)?;
    let verify_at = UnixTime::since_unix_epoch(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(RENEW_BEFORE),
    );

    let serving_check = |cert: &CertificateDer<'static>| -> Result<(), String> {
        let verifier = WebPkiServerVerifier::builder_with_provider(ca.roots.clone(), provider())
            .build()
            .map_err(|e| format!("building verifier: {e}"))?;
        for name in &names {
            verifier
                .verify_server_cert(cert, &[], name, &[], verify_at)
                .map_err(|e| format!("not valid for {}: {e}", name.to_str()))?;
        }
        Ok(())
    };
    let (serving_cert_pem, serving_key_pem) = load_or_issue_leaf(
        &dir,
        SERVING_CERT_FILE,
        SERVING_KEY_FILE,
        "serving certificate",
        serving_check,
        || ca.issue_serving(&names),
    )?;

    let admin_check = |cert: &CertificateDer<'static>| -> Result<(), String> {
        let verifier = WebPkiClientVerifier::builder_with_provider(ca.roots.clone(), provider())
            .build()
            .map_err(|e| format!("building verifier: {e}"))?;
        verifier
            .verify_client_cert(cert, &[], verify_at)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let (admin_cert_pem, admin_key_pem) = load_or_issue_leaf(
        &dir,
        ADMIN_CERT_FILE,
        ADMIN_KEY_FILE,
        "admin client certificate",
        admin_check,
        || ca.issue_client(ADMIN_USER, Some(ADMIN_GROUP)),
    )?;

    Ok(Pki {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        serving_cert_pem,
        serving_key_pem,
        admin_cert_pem,
        admin_key_pem,
        dir,
    })
}

/// Writes an admin kubeconfig for `server_url` (e.g. `https://127.0.0.1:6443`)
/// with cluster `keelson`, user `admin` and context `keelson` as the current
/// context, credentials embedded. The file is mode 0600.
pub fn write_kubeconfig(path: &Path, server_url: &str, pki: &Pki) -> Result<(), PkiError> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{
            "name": KUBECONFIG_CLUSTER,
            "cluster": {
                "server": server_url,
                "certificate-authority-data": b64(&pki.ca_cert_pem),
            },
        }],
        "users": [{
            "name": KUBECONFIG_USER,
            "user": {
                "client-certificate-data": b64(&pki.admin_cert_pem),
                "client-key-data": b64(&pki.admin_key_pem),
            },
        }],
        "contexts": [{
            "name": KUBECONFIG_CONTEXT,
            "context": { "cluster": KUBECONFIG_CLUSTER, "user": KUBECONFIG_USER },
        }],
        "current-context": KUBECONFIG_CONTEXT,
    });
    let yaml = serde_yaml::to_string(&config)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    write_file(path, yaml.as_bytes(), KEY_MODE)
}

/// The rustls crypto provider every part of the transport uses (ring),
/// installed explicitly rather than taken from a process default.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA, ready to sign.
struct LoadedCa {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
    roots: Arc<RootCertStore>,
    /// Leaf certificates must not outlive the CA.
    not_after: jiff::Timestamp,
}

impl LoadedCa {
    fn from_pem(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| invalid(&cert_path, format!("not a PEM certificate: {e}")))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| invalid(&key_path, format!("not a PEM private key: {e}")))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| invalid(&cert_path, format!("not an X.509 certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(&cert_path, "not a CA certificate".to_owned()));
        }
        if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
            return Err(invalid(
                &key_path,
                format!("does not match the public key in {}", cert_path.display()),
            ));
        }
        let not_after = jiff::Timestamp::from_second(x509.validity().not_after.timestamp())
            .map_err(|e| invalid(&cert_path, format!("notAfter out of range: {e}")))?;
        if not_after <= jiff::Timestamp::now() {
            return Err(PkiError::CaExpired {
                path: cert_path,
                not_after: not_after.to_string(),
            });
        }
        let renew_before = jiff::SignedDuration::try_from(RENEW_BEFORE).unwrap_or_default();
        if not_after.duration_since(jiff::Timestamp::now()) < renew_before {
            warn!(
                path = %cert_path.display(),
                %not_after,
                "the cluster CA expires soon; it is never replaced automatically"
            );
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = subject_dn(&x509).map_err(|e| invalid(&cert_path, e))?;
        params.key_identifier_method = match subject_key_id(&x509) {
            Some(id) => KeyIdMethod::PreSpecified(id),
            None => KeyIdMethod::Sha256,
        };
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut roots = RootCertStore::empty();
        roots
            .add(der.clone())
            .map_err(|e| invalid(&cert_path, format!("unusable as a trust anchor: {e}")))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer: Issuer::new(params, key),
            roots: Arc::new(roots),
            not_after,
        })
    }

    fn leaf_params(
        &self,
        common_name: &str,
        organization: Option<&str>,
    ) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(org) = organization {
            dn.push(DnType::OrganizationName, org);
        }
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        set_validity(&mut params, LEAF_VALIDITY_YEARS, Some(self.not_after));
        Ok(params)
    }

    fn issue_serving(&self, names: &[ServerName<'static>]) -> Result<(String, String), PkiError> {
        let mut params = self.leaf_params(SERVING_COMMON_NAME, None)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.subject_alt_names = names.iter().map(san_type).collect::<Result<Vec<_>, _>>()?;
        self.sign("serving certificate", params)
    }

    fn issue_client(
        &self,
        common_name: &str,
        organization: Option<&str>,
    ) -> Result<(String, String), PkiError> {
        let mut params = self.leaf_params(common_name, organization)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign("client certificate", params)
    }

    fn sign(
        &self,
        what: &'static str,
        params: CertificateParams,
    ) -> Result<(String, String), PkiError> {
        let generate = |source| PkiError::Generate { what, source };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(generate)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Loads the CA, or creates it when neither file exists.
fn load_or_create_ca(dir: &Path) -> Result<LoadedCa, PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    let cert = read_optional(&cert_path)?;
    let key = read_optional(&key_path)?;
    match (cert, key) {
        (Some(cert), Some(key)) => {
            tighten_mode(&key_path)?;
            LoadedCa::from_pem(dir, &cert, &key)
        }
        (Some(_), None) => Err(PkiError::IncompleteCa {
            present: cert_path,
            missing: key_path,
        }),
        (None, Some(_)) => Err(PkiError::IncompleteCa {
            present: key_path,
            missing: cert_path,
        }),
        (None, None) => {
            let generate = |source| PkiError::Generate {
                what: "cluster CA",
                source,
            };
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate)?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, CA_COMMON_NAME);
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.serial_number = Some(random_serial());
            set_validity(&mut params, CA_VALIDITY_YEARS, None);
            let cert = params.self_signed(&key).map_err(generate)?;
            let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
            // Key first: a crash in between leaves a key without a
            // certificate, which `IncompleteCa` reports rather than hides.
            write_file(&key_path, key_pem.as_bytes(), KEY_MODE)?;
            write_file(&cert_path, cert_pem.as_bytes(), CERT_MODE)?;
            info!(path = %cert_path.display(), "created the cluster CA");
            LoadedCa::from_pem(dir, &cert_pem, &key_pem)
        }
    }
}

/// Loads a leaf certificate and key if both exist, match each other and
/// pass `check`; otherwise issues a new pair and writes it.
fn load_or_issue_leaf(
    dir: &Path,
    cert_file: &str,
    key_file: &str,
    what: &'static str,
    check: impl Fn(&CertificateDer<'static>) -> Result<(), String>,
    issue: impl FnOnce() -> Result<(String, String), PkiError>,
) -> Result<(String, String), PkiError> {
    let cert_path = dir.join(cert_file);
    let key_path = dir.join(key_file);
    let reason = match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert), Some(key)) => match usable_leaf(&cert, &key, &check) {
            Ok(()) => {
                tighten_mode(&key_path)?;
                return Ok((cert, key));
            }
            Err(reason) => reason,
        },
        (None, None) => String::new(),
        (None, Some(_)) => format!("{} is missing", cert_path.display()),
        (Some(_), None) => format!("{} is missing", key_path.display()),
    };
    let (cert, key) = issue()?;
    write_file(&key_path, key.as_bytes(), KEY_MODE)?;
    write_file(&cert_path, cert.as_bytes(), CERT_MODE)?;
    if reason.is_empty() {
        info!(path = %cert_path.display(), "issued the {what}");
    } else {
        info!(path = %cert_path.display(), %reason, "re-issued the {what}");
    }
    Ok((cert, key))
}

fn usable_leaf(
    cert_pem: &str,
    key_pem: &str,
    check: &impl Fn(&CertificateDer<'static>) -> Result<(), String>,
) -> Result<(), String> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| format!("certificate unreadable: {e}"))?;
    let key = KeyPair::from_pem(key_pem).map_err(|e| format!("key unreadable: {e}"))?;
    let (_, x509) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("certificate unreadable: {e}"))?;
    if x509.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
        return Err("key does not match the certificate".to_owned());
    }
    check(&der)
}

/// The serving certificate's names: defaults first, then `extra`, parsed
/// and deduplicated.
fn serving_names(extra: &[String]) -> Result<Vec<ServerName<'static>>, PkiError> {
    let mut names: Vec<ServerName<'static>> = Vec::new();
    for raw in DEFAULT_SANS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        let trimmed = raw.trim();
        // `[v6]` as in URLs; brackets around anything else are a mistake.
        let unbracketed = match trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) if inner.parse::<std::net::Ipv6Addr>().is_ok() => inner,
            Some(_) => {
                return Err(PkiError::InvalidSan {
                    san: raw.to_owned(),
                    reason: "brackets may only enclose an IPv6 address".to_owned(),
                });
            }
            None => trimmed,
        };
        if unbracketed.is_empty() {
            return Err(PkiError::InvalidSan {
                san: raw.to_owned(),
                reason: "empty".to_owned(),
            });
        }
        let name = ServerName::try_from(unbracketed.to_ascii_lowercase()).map_err(|e| {
            PkiError::InvalidSan {
                san: raw.to_owned(),
                reason: format!("neither an IP address nor a DNS name ({e})"),
            }
        })?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn san_type(name: &ServerName<'static>) -> Result<SanType, PkiError> {
    match name {
        ServerName::IpAddress(ip) => Ok(SanType::IpAddress(std::net::IpAddr::from(*ip))),
        ServerName::DnsName(dns) => {
            let s = dns.as_ref().to_owned();
            s.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| PkiError::InvalidSan {
                    san: s,
                    reason: format!("{e}"),
                })
        }
        other => Err(PkiError::InvalidSan {
            san: format!("{other:?}"),
            reason: "unsupported name type".to_owned(),
        }),
    }
}

/// The CA certificate's subject as rcgen needs it to name the issuer of new
/// certificates: same attributes, same string types, same order, so the
/// issuer bytes match the CA's subject bytes.
fn subject_dn(x509: &X509Certificate<'_>) -> Result<DistinguishedName, String> {
    let mut dn = DistinguishedName::new();
    for rdn in x509.subject().iter() {
        for atv in rdn.iter() {
            let oid: Vec<u64> = atv
                .attr_type()
                .iter()
                .ok_or("subject attribute type OID out of range")?
                .collect();
            let ty = DnType::from_oid(&oid);
            if dn.get(&ty).is_some() {
                return Err(format!("subject repeats attribute {}", atv.attr_type()));
            }
            let value = atv
                .as_str()
                .map_err(|e| format!("subject attribute {}: {e}", atv.attr_type()))?
                .to_owned();
            let value = match atv.attr_value().tag() {
                Tag::PrintableString => {
                    DnValue::PrintableString(value.try_into().map_err(|e| format!("subject: {e}"))?)
                }
                Tag::Ia5String => {
                    DnValue::Ia5String(value.try_into().map_err(|e| format!("subject: {e}"))?)
                }
                Tag::TeletexString => {
                    DnValue::TeletexString(value.try_into().map_err(|e| format!("subject: {e}"))?)
                }
                Tag::Utf8String => DnValue::Utf8String(value),
                other => return Err(format!("subject uses unsupported string type {other}")),
            };
            dn.push(ty, value);
        }
    }
    Ok(dn)
}

fn subject_key_id(x509: &X509Certificate<'_>) -> Option<Vec<u8>> {
    x509.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

/// Sets validity from yesterday (tolerating clock skew) for `years`,
/// capped at `cap`.
fn set_validity(params: &mut CertificateParams, years: i16, cap: Option<jiff::Timestamp>) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let start = today.yesterday().unwrap_or(today);
    let mut end = today
        .checked_add(jiff::Span::new().years(years))
        .unwrap_or(today);
    if let Some(cap) = cap {
        // Midnight of the cap's date is at or before the cap itself.
        let cap_date = cap.to_zoned(jiff::tz::TimeZone::UTC).date();
        if cap_date < end {
            end = cap_date;
        }
    }
    // jiff dates are always valid calendar dates, which is all
    // `date_time_ymd` asks of its arguments.
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(
            i32::from(d.year()),
            d.month().unsigned_abs(),
            d.day().unsigned_abs(),
        )
    };
    params.not_before = ymd(start);
    params.not_after = ymd(end);
}

fn random_serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    // Positive and non-zero.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn invalid(path: &Path, reason: String) -> PkiError {
    PkiError::Invalid {
        path: path.to_owned(),
        reason,
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.to_owned();
    move |source| PkiError::Io { op, path, source }
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err("setting permissions on", dir))?;
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::Io {
            op: "reading",
            path: path.to_owned(),
            source: e,
        }),
    }
}

/// Private keys are 0600 whatever state they were found in.
fn tighten_mode(path: &Path) -> Result<(), PkiError> {
    let meta = fs::metadata(path).map_err(io_err("inspecting", path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        warn!(path = %path.display(), "private key was readable by others; setting mode 0600");
        fs::set_permissions(path, fs::Permissions::from_mode(KEY_MODE))
            .map_err(io_err("setting permissions on", path))?;
    }
    Ok(())
}

/// Writes `contents` to `path` atomically (temporary file, fsync, rename)
/// with `mode` from the moment the file exists.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("creating", &tmp))?;
    // A leftover temporary file keeps its old mode; set it explicitly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err("setting permissions on", &tmp))?;
    file.write_all(contents).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err("renaming into place", path))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(parent)
    {
        // Best effort: make the rename durable.
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
    }

    /// SANs of a certificate as strings (IPs formatted).
    fn sans(pem: &str) -> Vec<String> {
        let der = der(pem);
        let (_, x509) = x509_parser::parse_x509_certificate(&der).expect("x509");
        let san = x509
            .subject_alternative_name()
            .expect("extension parses")
            .expect("has SANs");
        san.value
            .general_names
            .iter()
            .map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*b).expect("v4")).to_string(),
                    16 => std::net::IpAddr::from(<[u8; 16]>::try_from(*b).expect("v6")).to_string(),
                    _ => panic!("bad IP SAN"),
                },
                other => panic!("unexpected SAN {other:?}"),
            })
            .collect()
    }

    #[test]
    fn first_start_creates_ca_serving_and_admin_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki =
            ensure(dir.path(), &["10.0.0.1".into(), "api.example.test".into()]).expect("ensure");
        let pki_dir = dir.path().join("pki");
        assert_eq!(pki.dir, pki_dir);
        assert_eq!(mode(&pki_dir), 0o700);
        for key in [CA_KEY_FILE, SERVING_KEY_FILE, ADMIN_KEY_FILE] {
            assert_eq!(mode(&pki_dir.join(key)), 0o600, "{key}");
        }
        assert_eq!(
            fs::read_to_string(pki_dir.join(CA_CERT_FILE)).expect("read"),
            pki.ca_cert_pem
        );

        let ca_der = der(&pki.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).expect("ca");
        assert!(ca.is_ca());
        assert_eq!(
            ca.subject()
                .iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok()),
            Some(CA_COMMON_NAME)
        );
        let years = (ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp())
            / (365 * 24 * 3600);
        assert_eq!(years, 10);

        let mut expected: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
        expected.extend(["10.0.0.1".into(), "api.example.test".into()]);
        assert_eq!(sans(&pki.serving_cert_pem), expected);

        // Leaves name the CA exactly as it names itself, and point at its
        // key identifier (OpenSSL builds chains with both).
        for leaf in [&pki.serving_cert_pem, &pki.admin_cert_pem] {
            let leaf_der = der(leaf);
            let (_, x509) = x509_parser::parse_x509_certificate(&leaf_der).expect("leaf");
            assert_eq!(x509.issuer().as_raw(), ca.subject().as_raw());
            let aki = x509
                .iter_extensions()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.clone(),
                    _ => None,
                })
                .expect("AKI");
            assert_eq!(Some(aki.0.to_vec()), subject_key_id(&ca));
        }

        let admin_der = der(&pki.admin_cert_pem);
        let (_, admin) = x509_parser::parse_x509_certificate(&admin_der).expect("admin");
        let subject = admin.subject();
        assert_eq!(
            subject
                .iter_common_name()
                .next()
                .and_then(|c| c.as_str().ok()),
            Some(ADMIN_USER)
        );
        assert_eq!(
            subject
                .iter_organization()
                .next()
                .and_then(|o| o.as_str().ok()),
            Some(ADMIN_GROUP)
        );
        let eku = admin
            .extended_key_usage()
            .expect("eku")
            .expect("has eku")
            .value;
        assert!(eku.client_auth && !eku.server_auth);
    }

    #[test]
    fn later_starts_load_and_changed_sans_reissue_only_the_serving_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure(dir.path(), &[]).expect("first");
        let second = ensure(dir.path(), &[]).expect("second");
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.ca_key_pem, second.ca_key_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.serving_key_pem, second.serving_key_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);

        // A SAN already covered (case and brackets aside) changes nothing.
        let same = ensure(dir.path(), &["LOCALHOST".into(), " 127.0.0.1 ".into()]).expect("same");
        assert_eq!(first.serving_cert_pem, same.serving_cert_pem);

        let third = ensure(dir.path(), &["192.168.7.7".into(), "[::1]".into()]).expect("third");
        assert_eq!(first.ca_cert_pem, third.ca_cert_pem);
        assert_eq!(first.ca_key_pem, third.ca_key_pem);
        assert_eq!(first.admin_cert_pem, third.admin_cert_pem);
        assert_eq!(first.admin_key_pem, third.admin_key_pem);
        assert_ne!(first.serving_cert_pem, third.serving_cert_pem);
        assert_ne!(first.serving_key_pem, third.serving_key_pem);
        let names = sans(&third.serving_cert_pem);
        assert!(names.contains(&"192.168.7.7".to_owned()), "{names:?}");
        assert!(names.contains(&"::1".to_owned()), "{names:?}");
        assert_eq!(
            fs::read_to_string(dir.path().join("pki").join(SERVING_CERT_FILE)).expect("read"),
            third.serving_cert_pem
        );
    }

    #[test]
    fn broken_leaves_are_reissued_by_the_same_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure(dir.path(), &[]).expect("first");
        let pki_dir = dir.path().join("pki");
        // A serving key that does not match its certificate.
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        fs::write(pki_dir.join(SERVING_KEY_FILE), other.serialize_pem()).expect("write");
        // An admin certificate that is garbage, and a loose key mode.
        fs::write(pki_dir.join(ADMIN_CERT_FILE), "garbage").expect("write");
        fs::set_permissions(pki_dir.join(CA_KEY_FILE), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let second = ensure(dir.path(), &[]).expect("second");
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
        assert_ne!(second.serving_key_pem, other.serialize_pem());
        assert_ne!(first.admin_cert_pem, second.admin_cert_pem);
        assert_eq!(mode(&pki_dir.join(CA_KEY_FILE)), 0o600);
        // And the result is stable again.
        let third = ensure(dir.path(), &[]).expect("third");
        assert_eq!(second.serving_cert_pem, third.serving_cert_pem);
        assert_eq!(second.admin_cert_pem, third.admin_cert_pem);
    }

    #[test]
    fn leaves_from_another_ca_are_reissued_and_the_ca_is_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let first = ensure(dir.path(), &[]).expect("first");
        let foreign = ensure(other.path(), &[]).expect("foreign");
        fs::copy(
            other.path().join("pki").join(SERVING_CERT_FILE),
            dir.path().join("pki").join(SERVING_CERT_FILE),
        )
        .expect("copy");
        fs::copy(
            other.path().join("pki").join(SERVING_KEY_FILE),
            dir.path().join("pki").join(SERVING_KEY_FILE),
        )
        .expect("copy");
        let second = ensure(dir.path(), &[]).expect("second");
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_ne!(second.serving_cert_pem, foreign.serving_cert_pem);
        assert_ne!(second.serving_cert_pem, first.serving_cert_pem);

        // Half a CA is an error, not a reason to make a new one.
        fs::remove_file(dir.path().join("pki").join(CA_KEY_FILE)).expect("rm");
        let err = ensure(dir.path(), &[]).expect_err("incomplete CA");
        assert!(matches!(err, PkiError::IncompleteCa { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join("pki").join(CA_CERT_FILE)).expect("read"),
            first.ca_cert_pem
        );
        assert!(!dir.path().join("pki").join(CA_KEY_FILE).exists());

        // A CA key that is not the CA certificate's key is an error too.
        fs::copy(
            other.path().join("pki").join(CA_KEY_FILE),
            dir.path().join("pki").join(CA_KEY_FILE),
        )
        .expect("copy");
        let err = ensure(dir.path(), &[]).expect_err("mismatched CA key");
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn invalid_sans_are_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        for bad in [
            "",
            "not a name",
            "bad_underscore..x",
            "[nope]",
            "[10.0.0.1]",
            "-x.example",
        ] {
            let err = ensure(dir.path(), &[bad.to_owned()]).expect_err(bad);
            assert!(matches!(err, PkiError::InvalidSan { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn kubeconfig_embeds_credentials_and_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = ensure(dir.path(), &[]).expect("pki");
        let path = dir.path().join("sub").join("admin.kubeconfig");
        write_kubeconfig(&path, "https://127.0.0.1:6443", &pki).expect("write");
        assert_eq!(mode(&path), 0o600);
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&fs::read_to_string(&path).expect("read")).expect("yaml");
        let decode = |v: &serde_yaml::Value| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().expect("string"))
                    .expect("base64"),
            )
            .expect("utf8")
        };
        assert_eq!(yaml["current-context"], "keelson");
        assert_eq!(yaml["contexts"][0]["name"], "keelson");
        assert_eq!(yaml["contexts"][0]["context"]["cluster"], "keelson");
        assert_eq!(yaml["contexts"][0]["context"]["user"], "admin");
        let cluster = &yaml["clusters"][0];
        assert_eq!(cluster["name"], "keelson");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(
            decode(&cluster["cluster"]["certificate-authority-data"]),
            pki.ca_cert_pem
        );
        let user = &yaml["users"][0];
        assert_eq!(user["name"], "admin");
        assert_eq!(
            decode(&user["user"]["client-certificate-data"]),
            pki.admin_cert_pem
        );
        assert_eq!(decode(&user["user"]["client-key-data"]), pki.admin_key_pem);
    }
}
