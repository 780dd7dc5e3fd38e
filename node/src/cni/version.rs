//! The CNI spec versions this plugin speaks and the `VERSION` reply.
//! Results are rendered in the config's own version (see `result.rs`).

use serde::Serialize;

/// The version this plugin implements natively.
pub const CURRENT: &str = "1.0.0";

/// Every version whose configs and results the plugin handles (`VERSION`).
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0"];

/// A supported spec version, ordered by age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
}

impl Version {
    /// The supported version spelled `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "0.3.0" => Self::V0_3_0,
            "0.3.1" => Self::V0_3_1,
            "0.4.0" => Self::V0_4_0,
            "1.0.0" => Self::V1_0_0,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
        }
    }

    /// CHECK (and `prevResult` on DEL) arrived with 0.4.0.
    pub fn supports_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// Results before 1.0.0 carry `"version": "4"` on every IP.
    pub fn ip_has_version_field(self) -> bool {
        self < Self::V1_0_0
    }
}

/// The reply to `CNI_COMMAND=VERSION`.
pub fn version_json() -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct VersionResult {
        cni_version: &'static str,
        supported_versions: &'static [&'static str],
    }
    serde_json::to_string(&VersionResult {
        cni_version: CURRENT,
        supported_versions: SUPPORTED,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_version_parses_and_round_trips() {
        for v in SUPPORTED {
            assert_eq!(Version::parse(v).map(Version::as_str), Some(*v));
        }
        assert_eq!(Version::parse("0.2.0"), None);
        assert_eq!(Version::parse("1.1.0"), None);
        assert!(!Version::V0_3_1.supports_check());
        assert!(Version::V0_4_0.supports_check());
        assert!(Version::V0_4_0.ip_has_version_field());
        assert!(!Version::V1_0_0.ip_has_version_field());
    }

    #[test]
    fn version_reply_lists_the_supported_versions() {
        let v: serde_json::Value = serde_json::from_str(&version_json()).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(
            v["supportedVersions"],
            serde_json::json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
        );
    }
}
