//! Audit settings: the kubelet version the rules are judged for (the
//! recording does not carry it) and the tolerances used where the kubelet's
//! own timing is coarse.

use std::{fmt, str::FromStr};

use lifecycle_recording::time::NS_PER_S;
use serde::{Deserialize, Serialize};

/// A kubelet version, `major.minor[.patch]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KubeletVersion {
    /// Always 1: other majors are rejected when parsing.
    pub major: u32,
    /// The minor version, on which the rules and fixes are keyed.
    pub minor: u32,
    /// Only used to describe the version; rules are keyed on the minor.
    pub patch: Option<u32>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
/// Why a kubelet version string was rejected.
pub enum VersionParseError {
    #[error("kubelet version {0:?} is not of the form 1.MINOR[.PATCH]")]
    /// Not `1.MINOR[.PATCH]`, even after dropping a leading `v` and build
    /// metadata (`-gke.100`, `+k3s1`).
    NotMajorMinor(String),
    #[error("kubelet version {0:?} is not 1.x: the rules cover Kubernetes 1.x only")]
    /// A well-formed version whose major is not 1.
    UnsupportedMajor(String),
}

impl VersionParseError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotMajorMinor(_) => "not_major_minor",
            Self::UnsupportedMajor(_) => "unsupported_major",
        }
    }
}

impl FromStr for KubeletVersion {
    type Err = VersionParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || VersionParseError::NotMajorMinor(text.to_owned());
        let trimmed = text.trim().trim_start_matches('v');
        // Drop build metadata such as `-gke.100` or `+k3s1`.
        let core = trimmed.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let patch = match parts.next() {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None => None,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        if major != 1 {
            return Err(VersionParseError::UnsupportedMajor(text.to_owned()));
        }
        Ok(Self {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}", self.major, self.minor, p),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl Default for KubeletVersion {
    /// 1.33: native sidecars are stable and always on.
    fn default() -> Self {
        Self {
            major: 1,
            minor: 33,
            patch: None,
        }
    }
}

impl KubeletVersion {
    /// Native sidecars are stopped in reverse order after the main
    /// containers (beta and on by default from 1.29). On 1.28 the feature
    /// gate is off by default and sidecars stop in parallel.
    pub fn orders_sidecar_termination(&self) -> bool {
        self.minor >= 29
    }

    /// A sidecar may restart while its pod terminates (KEP-4438, targeted
    /// at 1.37).
    pub fn allows_restart_during_termination(&self) -> bool {
        self.minor >= 37
    }

    /// The never-started-sidecar bug (#125880) is fixed in every 1.31+; on
    /// 1.29 and 1.30 only in later patch releases.
    pub fn never_started_sidecar_fixed(&self) -> Fix {
        match self.minor {
            0..=28 => Fix::NotApplicable,
            29 | 30 => Fix::InPatchReleases,
            _ => Fix::Fixed,
        }
    }
}

/// Whether a kubelet bug fix is in the assumed version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Fixed in every release of this minor version.
    Fixed,
    /// Backported: fixed only if the cluster runs a recent patch release.
    InPatchReleases,
    /// The feature does not exist in this version.
    NotApplicable,
}

/// Settings of an audit run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditConfig {
    /// The kubelet version whose semantics are assumed.
    pub kubelet: KubeletVersion,
    /// Stream time to wait after a pod looks finished before its audit is
    /// produced, for late records.
    pub settle_ns: i64,
    /// Also produce a startup-only audit once a pod's containers are ready
    /// (for live use; offline one audit per pod is enough).
    pub emit_startup: bool,
    /// Records kept per pod at most; later ones are counted, not kept.
    pub max_records_per_pod: usize,
    /// When a pod's records reach the cap, drop its older half of socket
    /// records instead of every later record (live use: a long-running,
    /// busy pod must still have room for its termination).
    pub compact_sockets: bool,
    /// How far a kubelet action may trail the instant it was due and
    /// still count as on time (its timers work in whole seconds).
    pub kubelet_slack_ns: i64,
    /// How close to t0 a preStop hook must start (rule T1).
    pub prestop_start_slack_ns: i64,
}

/// Records kept per pod by default (offline audits of whole recordings).
pub const DEFAULT_MAX_RECORDS_PER_POD: usize = 200_000;

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            kubelet: KubeletVersion::default(),
            settle_ns: 5 * NS_PER_S,
            emit_startup: false,
            max_records_per_pod: DEFAULT_MAX_RECORDS_PER_POD,
            compact_sockets: false,
            kubelet_slack_ns: NS_PER_S,
            prestop_start_slack_ns: NS_PER_S,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_prefixes_and_build_metadata() {
        let v: KubeletVersion = "v1.29.7-gke.100".parse().unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 29, Some(7)));
        assert_eq!(v.to_string(), "1.29.7");
        assert_eq!("1.33".parse::<KubeletVersion>().unwrap().patch, None);
        assert!(matches!(
            "2.0".parse::<KubeletVersion>(),
            Err(VersionParseError::UnsupportedMajor(_))
        ));
        assert!(matches!(
            "1".parse::<KubeletVersion>(),
            Err(VersionParseError::NotMajorMinor(_))
        ));
        assert!("1.30.x".parse::<KubeletVersion>().is_err());
    }

    #[test]
    fn features_follow_the_minor() {
        let at = |m| KubeletVersion {
            major: 1,
            minor: m,
            patch: None,
        };
        assert!(!at(28).orders_sidecar_termination());
        assert!(at(29).orders_sidecar_termination());
        assert!(!at(36).allows_restart_during_termination());
        assert!(at(37).allows_restart_during_termination());
        assert_eq!(at(30).never_started_sidecar_fixed(), Fix::InPatchReleases);
        assert_eq!(at(31).never_started_sidecar_fixed(), Fix::Fixed);
        assert_eq!(KubeletVersion::default().to_string(), "1.33");
    }
}
