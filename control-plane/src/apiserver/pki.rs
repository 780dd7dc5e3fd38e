//! STUB in main until the transport branch merges.
use std::path::Path;

pub struct Pki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}
#[derive(Debug, thiserror::Error)]
#[error("pki")]
pub struct PkiError;
pub fn ensure(_data_dir: &Path, _sans: &[String]) -> Result<Pki, PkiError> { unimplemented!() }
pub fn write_kubeconfig(_path: &Path, _server_url: &str, _pki: &Pki) -> Result<(), PkiError> { unimplemented!() }
