//! `--key value` and `--flag` arguments, repeatable.

use std::collections::HashMap;

/// Parsed arguments: every `--key` with the values given to it, in order.
pub struct Args {
    values: HashMap<String, Vec<String>>,
}

impl Args {
    /// `--key value` pairs; a `--key` followed by another `--key` (or
    /// nothing) is a flag.
    pub fn parse(argv: &[String]) -> Result<Self, String> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let mut i = 0;
        while i < argv.len() {
            let Some(key) = argv[i].strip_prefix("--") else {
                return Err(format!("expected --key, got {}", argv[i]));
            };
            match argv.get(i + 1).filter(|v| !v.starts_with("--")) {
                Some(value) => {
                    values
                        .entry(key.to_owned())
                        .or_default()
                        .push(value.clone());
                    i += 2;
                }
                None => {
                    values.entry(key.to_owned()).or_default();
                    i += 1;
                }
            }
        }
        Ok(Self { values })
    }

    pub fn flag(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key)?.last().map(String::as_str)
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.values.get(key).cloned().unwrap_or_default()
    }

    pub fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("--{key} is required"))
    }

    pub fn ms(&self, key: &str, default: u64) -> Result<u64, String> {
        self.number(key, default)
    }

    pub fn number<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("--{key} {text} is not a number")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(argv: &[&str]) -> Result<Args, String> {
        Args::parse(&argv.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn keys_take_values_and_repeat() {
        let args = parse(&[
            "--call",
            "10.0.0.1:80",
            "--call",
            "10.0.0.2:80",
            "--ms",
            "5",
        ])
        .unwrap();
        assert_eq!(args.all("call"), ["10.0.0.1:80", "10.0.0.2:80"]);
        assert_eq!(args.get("call"), Some("10.0.0.2:80"), "the last value wins");
        assert_eq!(args.ms("ms", 0), Ok(5));
        assert_eq!(args.ms("absent", 7), Ok(7));
        assert!(args.all("absent").is_empty());
    }

    #[test]
    fn a_key_without_a_value_is_a_flag() {
        let args = parse(&["--ignore-term", "--drain-ms", "100", "--once"]).unwrap();
        assert!(args.flag("ignore-term") && args.flag("once"));
        assert!(!args.flag("drain"));
        assert_eq!(args.get("ignore-term"), None);
        assert_eq!(args.number::<u64>("drain-ms", 0), Ok(100));
    }

    #[test]
    fn bad_input_is_refused_with_the_key() {
        assert_eq!(
            parse(&["app"]).err().as_deref(),
            Some("expected --key, got app")
        );
        let args = parse(&["--exit", "three"]).unwrap();
        assert_eq!(
            args.number::<i32>("exit", 0),
            Err("--exit three is not a number".into())
        );
        assert_eq!(args.required("rules"), Err("--rules is required".into()));
    }
}
