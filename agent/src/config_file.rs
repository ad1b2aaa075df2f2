//! `run --config FILE`: flags from a file, for a ConfigMap.
//!
//! The file holds `flag-name: value` lines (a flat YAML mapping; `#`
//! comments, optional quotes). A flag given on the command line wins over
//! its environment variable, which wins over the file: the file's entries
//! become command-line flags only for flags set neither way. An unknown
//! key is an error naming the known ones, so a typo does not go unnoticed.

use std::{ffi::OsString, path::PathBuf};

use clap::CommandFactory;
use thiserror::Error;

use crate::config::Cli;

#[derive(Debug, Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected `flag-name: value`, found {text:?}")]
    Malformed {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}:{line}: unknown setting {key:?}; known: {known}")]
    UnknownSetting {
        path: PathBuf,
        line: usize,
        key: String,
        known: String,
    },
}

impl ConfigFileError {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "config_file_unreadable",
            Self::Malformed { .. } => "config_file_malformed",
            Self::UnknownSetting { .. } => "config_file_unknown_setting",
        }
    }
}

/// `(key, value, line)` entries of a config file's text.
pub fn parse_entries(
    text: &str,
    path: &std::path::Path,
) -> Result<Vec<(String, String, usize)>, ConfigFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or(raw).trim();
        if line.is_empty() || line.starts_with('#') || line == "---" {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(ConfigFileError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
                text: raw.to_owned(),
            });
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        out.push((key.trim().replace('_', "-"), value.to_owned(), i + 1));
    }
    Ok(out)
}

/// The command line with the config file's settings added after `run`
/// (when `run` is the command and a config file is named).
pub fn with_config_file(args: Vec<OsString>) -> Result<Vec<OsString>, ConfigFileError> {
    let strings: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(run_at) = strings.iter().position(|a| a == "run") else {
        return Ok(args);
    };
    let named = strings[run_at..]
        .iter()
        .enumerate()
        .find_map(|(i, a)| {
            a.strip_prefix("--config=")
                .map(str::to_owned)
                .or_else(|| (a == "--config").then(|| strings.get(run_at + i + 1).cloned())?)
        })
        .or_else(|| std::env::var("LIFECYCLE_AGENT_CONFIG").ok());
    let Some(path) = named.map(PathBuf::from) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigFileError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let command = Cli::command();
    let run = command
        .find_subcommand("run")
        .expect("the run subcommand exists");
    let flags: Vec<(String, Option<OsString>, bool)> = run
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?.to_owned();
            let takes_value = a.get_action().takes_values();
            Some((long, a.get_env().map(OsString::from), takes_value))
        })
        .filter(|(long, _, _)| long != "config")
        .collect();
    let mut extra = Vec::new();
    for (key, value, line) in parse_entries(&text, &path)? {
        let Some((long, env, takes_value)) = flags.iter().find(|(l, _, _)| *l == key) else {
            let known: Vec<&str> = flags.iter().map(|(l, _, _)| l.as_str()).collect();
            return Err(ConfigFileError::UnknownSetting {
                path,
                line,
                key,
                known: known.join(", "),
            });
        };
        let on_command_line = strings[run_at..]
            .iter()
            .any(|a| *a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
        let in_env = env.as_ref().is_some_and(|e| std::env::var_os(e).is_some());
        if on_command_line || in_env {
            continue;
        }
        if *takes_value {
            extra.push(OsString::from(format!("--{long}={value}")));
        } else if value == "true" {
            extra.push(OsString::from(format!("--{long}")));
        }
    }
    let mut out = args;
    let tail = out.split_off(run_at + 1);
    out.extend(extra);
    out.extend(tail);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn entries_ignore_comments_and_quotes() {
        let text = "# agent\nnode-name: \"n1\"  # from the file\n\nstats_interval: 5s\n";
        let entries = parse_entries(text, std::path::Path::new("c.yaml")).unwrap();
        assert_eq!(
            entries,
            vec![
                ("node-name".into(), "n1".into(), 2),
                ("stats-interval".into(), "5s".into(), 4)
            ]
        );
        assert!(matches!(
            parse_entries("just words\n", std::path::Path::new("c.yaml")),
            Err(ConfigFileError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn the_command_line_beats_the_file_and_typos_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.yaml");
        std::fs::write(
            &file,
            "journal-dir: /var/j\nshutdown-timeout: 3s\nall-cgroups: true\n",
        )
        .unwrap();
        let config = format!("--config={}", file.display());
        let args =
            with_config_file(os(&["agent", "run", &config, "--shutdown-timeout", "9s"])).unwrap();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"--journal-dir=/var/j".to_owned()));
        assert!(args.contains(&"--all-cgroups".to_owned()));
        assert!(!args.iter().any(|a| a == "--shutdown-timeout=3s"));
        let parsed = <Cli as clap::Parser>::try_parse_from(&args).expect("parses");
        match parsed.command {
            crate::config::Command::Run(run) => {
                assert_eq!(run.shutdown_timeout, std::time::Duration::from_secs(9));
                assert_eq!(run.journal_dir, Some(PathBuf::from("/var/j")));
                assert!(run.probes.all_cgroups);
            }
            other => panic!("parsed as {other:?}"),
        }
        std::fs::write(&file, "jurnal-dir: /x\n").unwrap();
        let err = with_config_file(os(&["agent", "run", &config])).unwrap_err();
        assert!(
            matches!(&err, ConfigFileError::UnknownSetting { key, .. } if key == "jurnal-dir"),
            "{err}"
        );
    }

    #[test]
    fn other_commands_are_left_alone() {
        let args = os(&["agent", "report", "x.jsonl"]);
        assert_eq!(with_config_file(args.clone()).unwrap(), args);
    }
}
