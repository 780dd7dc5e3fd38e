//! The plugin's one error type and its translation into the CNI error
//! result (`{"cniVersion","code","msg","details"}` on stdout): the only place
//! that knows the spec's error codes. Every failure of every command ends up
//! here; nothing else prints errors for the runtime.

use serde::Serialize;
use thiserror::Error;

use super::version;

/// Spec codes (CNI 1.0.0, "Error" section) and Keelson's own (≥ 100).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Container unknown or does not exist (CHECK of a container without an
    /// allocation).
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables (`CNI_COMMAND`, …).
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// I/O failure (stdin, the IPAM store).
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content (the config is not JSON of the right shape).
    pub const DECODING_FAILURE: u32 = 6;
    /// Invalid network config (a field's value fails validation).
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// Try again later (the IPAM store stayed locked).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// Keelson: every address of the pod CIDR is allocated.
    pub const POOL_EXHAUSTED: u32 = 100;
    /// Keelson: creating or removing links, addresses, routes or sysctls
    /// failed.
    pub const DATAPATH: u32 = 101;
    /// Keelson: CHECK found the pod's network different from what ADD made.
    pub const CHECK_FAILED: u32 = 102;
    /// Keelson: entering the pod's network namespace failed.
    pub const NETNS: u32 = 103;
}

/// Why a command failed. `Display` is the short `msg`; [`CniError::details`]
/// the longer `details`.
#[derive(Debug, Error)]
pub enum CniError {
    #[error("incompatible CNI version")]
    IncompatibleVersion(String),
    #[error("container unknown or does not exist")]
    UnknownContainer(String),
    #[error("invalid environment variables")]
    InvalidEnvironment(String),
    #[error("I/O failure")]
    Io(String),
    #[error("failed to decode the network config")]
    Decoding(String),
    #[error("invalid network config")]
    InvalidConfig(String),
    #[error("try again later")]
    TryAgainLater(String),
    #[error("address pool exhausted")]
    PoolExhausted(String),
    #[error("configuring the pod network failed")]
    Datapath(String),
    #[error("pod network check failed")]
    CheckFailed(String),
    #[error("entering the pod network namespace failed")]
    Netns(String),
}

impl CniError {
    /// The CNI error code.
    pub fn code(&self) -> u32 {
        match self {
            Self::IncompatibleVersion(_) => code::INCOMPATIBLE_VERSION,
            Self::UnknownContainer(_) => code::UNKNOWN_CONTAINER,
            Self::InvalidEnvironment(_) => code::INVALID_ENVIRONMENT,
            Self::Io(_) => code::IO_FAILURE,
            Self::Decoding(_) => code::DECODING_FAILURE,
            Self::InvalidConfig(_) => code::INVALID_NETWORK_CONFIG,
            Self::TryAgainLater(_) => code::TRY_AGAIN_LATER,
            Self::PoolExhausted(_) => code::POOL_EXHAUSTED,
            Self::Datapath(_) => code::DATAPATH,
            Self::CheckFailed(_) => code::CHECK_FAILED,
            Self::Netns(_) => code::NETNS,
        }
    }

    /// The long explanation for people (`details`).
    pub fn details(&self) -> &str {
        match self {
            Self::IncompatibleVersion(d)
            | Self::UnknownContainer(d)
            | Self::InvalidEnvironment(d)
            | Self::Io(d)
            | Self::Decoding(d)
            | Self::InvalidConfig(d)
            | Self::TryAgainLater(d)
            | Self::PoolExhausted(d)
            | Self::Datapath(d)
            | Self::CheckFailed(d)
            | Self::Netns(d) => d,
        }
    }

    /// The error result the runtime reads from stdout, in `cni_version`
    /// (the config's version when it was readable and supported).
    pub fn to_json(&self, cni_version: Option<&str>) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ErrorResult<'a> {
            cni_version: &'a str,
            code: u32,
            msg: String,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        let result = ErrorResult {
            cni_version: cni_version.unwrap_or(version::CURRENT),
            code: self.code(),
            msg: self.to_string(),
            details: self.details(),
        };
        // A struct of strings and integers always serialises.
        serde_json::to_string(&result).unwrap_or_else(|_| {
            format!(
                r#"{{"cniVersion":"{}","code":{}}}"#,
                version::CURRENT,
                self.code()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let e = CniError::PoolExhausted("all 5 addresses of 10.0.0.0/29 are taken".into());
        let v: serde_json::Value = serde_json::from_str(&e.to_json(Some("0.4.0"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "cniVersion": "0.4.0",
                "code": 100,
                "msg": "address pool exhausted",
                "details": "all 5 addresses of 10.0.0.0/29 are taken",
            })
        );
        let v: serde_json::Value =
            serde_json::from_str(&CniError::Decoding(String::new()).to_json(None)).unwrap();
        assert_eq!(v["cniVersion"], version::CURRENT);
        assert_eq!(v["code"], 6);
        assert!(v.get("details").is_none());
    }
}
