//! Kubelet versions whose sidecar behaviour differs.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A kubelet `1.<minor>` release. `1.29` and `1.30` stand for their
/// releases before the backported fix of kubernetes#125880.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KubeletVersion {
    pub minor: u32,
}

/// Why a version string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("kubelet version {0:?} is not 1.<minor>")]
    NotOneDotMinor(String),
    #[error("kubelet 1.{0} predates sidecar containers; the simulator knows 1.28 and later")]
    TooOld(u32),
}

impl KubeletVersion {
    pub const LATEST: Self = Self { minor: 33 };

    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let trimmed = text.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let (major, minor) = (parts.next(), parts.next());
        let minor: u32 = match (major, minor.and_then(|m| m.parse().ok())) {
            (Some("1"), Some(minor)) => minor,
            _ => return Err(VersionError::NotOneDotMinor(text.to_owned())),
        };
        if minor < 28 {
            return Err(VersionError::TooOld(minor));
        }
        Ok(Self { minor })
    }

    /// 1.29+: sidecars are stopped after the main containers, in reverse
    /// order. 1.28 (alpha) stops every container in parallel.
    pub fn ordered_sidecar_termination(&self) -> bool {
        self.minor >= 29
    }

    /// kubernetes#125880: a sidecar that never started keeps the earlier
    /// sidecars waiting for their turn until the grace period runs out.
    pub fn never_started_sidecar_blocks(&self) -> bool {
        matches!(self.minor, 29 | 30)
    }

    /// KEP-4438 (1.37 alpha, `SidecarsRestartableDuringPodTermination`): a
    /// sidecar that exits before its turn to stop during the pod's
    /// termination is restarted, and its turn's SIGTERM goes to the live
    /// instance; earlier kubelets leave it down.
    pub fn restarts_sidecars_in_termination(&self) -> bool {
        self.minor >= 37
    }

    /// What `/version` reports.
    pub fn git_version(&self) -> String {
        format!("v1.{}.0", self.minor)
    }
}

impl Default for KubeletVersion {
    fn default() -> Self {
        Self::LATEST
    }
}

impl fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl<'de> Deserialize<'de> for KubeletVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            S(String),
            F(f64),
        }
        let text = match Text::deserialize(deserializer)? {
            Text::S(s) => s,
            Text::F(f) => {
                return Err(serde::de::Error::custom(format!(
                    "kubelet version {f} must be a quoted string such as \"1.30\""
                )));
            }
        };
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_per_version() {
        let v128 = KubeletVersion::parse("1.28").unwrap();
        assert!(!v128.ordered_sidecar_termination());
        let v129 = KubeletVersion::parse("v1.29.0").unwrap();
        assert!(v129.ordered_sidecar_termination() && v129.never_started_sidecar_blocks());
        let v131 = KubeletVersion::parse("1.31").unwrap();
        assert!(v131.ordered_sidecar_termination() && !v131.never_started_sidecar_blocks());
        assert_eq!(KubeletVersion::parse("1.27"), Err(VersionError::TooOld(27)));
        assert!(KubeletVersion::parse("2.0").is_err());
        assert_eq!(KubeletVersion::LATEST.git_version(), "v1.33.0");
    }
}
