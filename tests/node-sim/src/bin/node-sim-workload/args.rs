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
