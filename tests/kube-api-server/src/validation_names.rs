//! Name rules of the API machinery (k8s.io/apimachinery
//! `pkg/util/validation`): DNS-1123 subdomains (object names), DNS-1123
//! labels (namespaces) and qualified names (`reportingController`). Each
//! check returns the machinery's messages, empty when the value is fine.

const SUBDOMAIN_MAX: usize = 253;
const LABEL_MAX: usize = 63;
const QUALIFIED_NAME_MAX: usize = 63;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
    alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
    (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
    characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  \
    or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const QUALIFIED_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must \
    start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
    regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn max_len(limit: usize) -> String {
    format!("must be no more than {limit} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

/// Problems of `value` as a DNS-1123 subdomain.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > SUBDOMAIN_MAX {
        errors.push(max_len(SUBDOMAIN_MAX));
    }
    if !value.split('.').all(is_label) {
        errors.push(SUBDOMAIN_MSG.to_owned());
    }
    errors
}

/// Problems of `value` as a DNS-1123 label.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_MAX {
        errors.push(max_len(LABEL_MAX));
    }
    if !is_label(value) {
        errors.push(LABEL_MSG.to_owned());
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Problems of `value` as a qualified name: `name` or `dns.prefix/name`.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a qualified name {QUALIFIED_MSG} with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')"
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_len(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_part(name) {
        errors.push(format!("name part {QUALIFIED_MSG}"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_and_labels() {
        assert!(dns1123_subdomain("web-7d9c-abcde.18a2f3c4d5e6f708").is_empty());
        assert_eq!(dns1123_subdomain("Web_1").len(), 1);
        assert_eq!(dns1123_subdomain("a..b").len(), 1);
        assert_eq!(dns1123_subdomain(&"a".repeat(254)).len(), 1);
        assert!(dns1123_label("shop").is_empty());
        assert_eq!(dns1123_label("a.b").len(), 1);
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("lifecycle-agent").is_empty());
        assert!(qualified_name("example.com/My_Name").is_empty());
        assert_eq!(
            qualified_name(""),
            vec![
                "name part must be non-empty".to_owned(),
                format!("name part {QUALIFIED_MSG}")
            ]
        );
        assert_eq!(
            qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
        assert_eq!(qualified_name("Bad.Prefix/x").len(), 1);
        assert_eq!(qualified_name("a/b/c").len(), 1);
    }
}
