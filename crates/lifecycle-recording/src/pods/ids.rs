//! Container ids, as the API reports them and as cgroup paths carry them.
//!
//! The API writes `containerd://<64 hex>`, `cri-o://<64 hex>` or
//! `docker://<64 hex>`; a cgroup path carries the same 64 hex digits, bare
//! or wrapped (`cri-containerd-<hex>.scope`, `crio-<hex>.scope`,
//! `docker-<hex>.scope`). Lookups compare only the id itself ([`IdKey`]),
//! stored as 32 bytes rather than 64 characters.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The container runtime named by an id's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `containerd://`.
    Containerd,
    /// `cri-o://`.
    CriO,
    /// `docker://`.
    Docker,
    /// No or another scheme.
    Unknown,
}

impl Runtime {
    fn scheme(self) -> Option<&'static str> {
        match self {
            Self::Containerd => Some("containerd"),
            Self::CriO => Some("cri-o"),
            Self::Docker => Some("docker"),
            Self::Unknown => None,
        }
    }
}

/// The runtime-independent part of a container id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdKey {
    /// 64 hex digits, stored as bytes.
    Hex([u8; 32]),
    /// Anything else, lower-cased (kept so odd runtimes still join).
    Other(Box<str>),
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl IdKey {
    /// Parses an id without scheme; `None` when empty.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let bytes = text.as_bytes();
        if bytes.len() == 64 {
            let mut out = [0u8; 32];
            let decoded = out.iter_mut().enumerate().all(|(i, slot)| {
                match (hex_digit(bytes[2 * i]), hex_digit(bytes[2 * i + 1])) {
                    (Some(hi), Some(lo)) => {
                        *slot = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
            if decoded {
                return Some(Self::Hex(out));
            }
        }
        Some(Self::Other(text.to_ascii_lowercase().into()))
    }

    /// Parses what a cgroup path segment may hold: a bare id, or a
    /// `<prefix>-<id>.scope` unit name.
    pub fn from_cgroup_segment(segment: &str) -> Option<Self> {
        let trimmed = segment.trim().trim_end_matches(".scope");
        let id = trimmed.rsplit(['-', ':']).next().unwrap_or(trimmed);
        Self::parse(id)
    }
}

impl fmt::Display for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hex(bytes) => bytes.iter().try_for_each(|b| write!(f, "{b:02x}")),
            Self::Other(text) => f.write_str(text),
        }
    }
}

/// A container id as reported in a pod status.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerId {
    /// The runtime from the scheme.
    pub runtime: Runtime,
    /// The id proper.
    pub key: IdKey,
}

impl ContainerId {
    /// Parses `containerd://…`, `cri-o://…`, `docker://…` or a bare id.
    pub fn parse(text: &str) -> Option<Self> {
        let (runtime, rest) = match text.split_once("://") {
            Some(("containerd", rest)) => (Runtime::Containerd, rest),
            Some(("cri-o", rest)) => (Runtime::CriO, rest),
            Some(("docker", rest)) => (Runtime::Docker, rest),
            Some((_, rest)) => (Runtime::Unknown, rest),
            None => (Runtime::Unknown, text),
        };
        Some(Self {
            runtime,
            key: IdKey::parse(rest)?,
        })
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.runtime.scheme() {
            Some(scheme) => write!(f, "{scheme}://{}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

impl Serialize for ContainerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContainerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("empty container id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn schemes_and_round_trip() {
        let id = ContainerId::parse(&format!("containerd://{HEX}")).unwrap();
        assert_eq!(id.runtime, Runtime::Containerd);
        assert!(matches!(id.key, IdKey::Hex(_)));
        assert_eq!(id.to_string(), format!("containerd://{HEX}"));
        let crio = ContainerId::parse(&format!("cri-o://{}", HEX.to_uppercase())).unwrap();
        assert_eq!(crio.key, id.key, "case does not matter");
        assert_eq!(ContainerId::parse(HEX).unwrap().to_string(), HEX);
        assert_eq!(
            ContainerId::parse("docker://abc").unwrap().key,
            IdKey::Other("abc".into())
        );
        assert!(ContainerId::parse("containerd://").is_none());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<ContainerId>(&json).unwrap(), id);
    }

    #[test]
    fn cgroup_segments() {
        let key = IdKey::parse(HEX).unwrap();
        for seg in [
            HEX.to_owned(),
            format!("cri-containerd-{HEX}.scope"),
            format!("crio-{HEX}.scope"),
            format!("docker-{HEX}.scope"),
            format!("crio-conmon-{HEX}.scope"),
        ] {
            assert_eq!(IdKey::from_cgroup_segment(&seg), Some(key.clone()), "{seg}");
        }
    }
}
