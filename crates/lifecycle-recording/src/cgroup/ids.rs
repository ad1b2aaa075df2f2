//! Validation of the identifiers embedded in kubelet cgroup names.

/// Length of a CRI container id in hex digits.
pub const CONTAINER_ID_LEN: usize = 64;

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `id` is a full container id: exactly 64 lowercase hex digits.
pub fn is_container_id(id: &str) -> bool {
    id.len() == CONTAINER_ID_LEN && is_lower_hex(id)
}

/// Checks a pod uid and returns it in the form the API server uses.
///
/// Accepted:
/// * a UUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lowercase hex), with `sep`
///   as the group separator (`-` for cgroupfs names, `_` for systemd unit
///   names, where `-` would mean slice nesting); the result always uses `-`;
/// * 32 lowercase hex digits: kubelet gives static pods (from manifest files)
///   the hash of their manifest as uid, without dashes.
pub fn canonical_pod_uid(raw: &str, sep: char) -> Option<String> {
    if raw.len() == 32 && is_lower_hex(raw) {
        return Some(raw.to_owned());
    }
    let groups: Vec<&str> = raw.split(sep).collect();
    let lens = [8, 4, 4, 4, 12];
    if groups.len() != lens.len() {
        return None;
    }
    let ok = groups
        .iter()
        .zip(lens)
        .all(|(g, len)| g.len() == len && is_lower_hex(g));
    ok.then(|| groups.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "1c3e5f0a-7b2d-4e8f-9a10-b2c3d4e5f607";

    #[test]
    fn container_id_must_be_64_lower_hex() {
        assert!(is_container_id(&"a".repeat(64)));
        assert!(is_container_id(&"0123456789abcdef".repeat(4)));
        assert!(!is_container_id(&"a".repeat(63)));
        assert!(!is_container_id(&"a".repeat(65)));
        assert!(!is_container_id(&"A".repeat(64)));
        assert!(!is_container_id(&"g".repeat(64)));
        assert!(!is_container_id(""));
    }

    #[test]
    fn pod_uid_dashed_and_underscored() {
        assert_eq!(canonical_pod_uid(UID, '-').as_deref(), Some(UID));
        let escaped = UID.replace('-', "_");
        assert_eq!(canonical_pod_uid(&escaped, '_').as_deref(), Some(UID));
        // The wrong separator for the driver is rejected.
        assert_eq!(canonical_pod_uid(&escaped, '-'), None);
        assert_eq!(canonical_pod_uid(UID, '_'), None);
    }

    #[test]
    fn pod_uid_static_pod_hash() {
        let hash = "5d1bcd7e6d1d4a6b8c7f0e9a8b7c6d5e";
        assert_eq!(canonical_pod_uid(hash, '_').as_deref(), Some(hash));
        assert_eq!(canonical_pod_uid(hash, '-').as_deref(), Some(hash));
    }

    #[test]
    fn pod_uid_malformed() {
        for bad in [
            "",
            "1c3e5f0a-7b2d-4e8f-9a10",
            "1c3e5f0a-7b2d-4e8f-9a10-b2c3d4e5f60",
            "1c3e5f0a-7b2d-4e8f-9a10-b2c3d4e5f6077",
            "1C3E5F0A-7B2D-4E8F-9A10-B2C3D4E5F607",
            "1c3e5f0a-7b2d-4e8f-9a10-b2c3d4e5f6zz",
            "1c3e5f0a7-b2d-4e8f-9a10-b2c3d4e5f607",
            "5d1bcd7e6d1d4a6b8c7f0e9a8b7c6d5",
        ] {
            assert_eq!(canonical_pod_uid(bad, '-'), None, "{bad}");
        }
    }
}
