//! Scenario files: loading, the workload arguments of each role, and
//! playing the steps on a node.

pub mod model;
pub mod roles;
pub mod run;

use std::path::{Path, PathBuf};

pub use model::{
    ContainerSim, Expectations, ExpectedFinding, KubeletExpectations, PodEntry, PodNames, Role,
    Scenario, Step,
};
pub use run::{RunOptions, ScenarioReport, WorkloadEvent, run};

/// Why a scenario file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("peer {name}: {address} is not an IPv4 ip:port")]
    BadPeerAddress { name: String, address: String },
    #[error("step names pod {0}, which the scenario does not define")]
    UnknownPodInStep(String),
}

impl Scenario {
    /// Reads a YAML (or JSON) scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ScenarioError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses scenario text (YAML, of which JSON is a subset).
    pub fn parse(text: &str) -> Result<Self, String> {
        let options = serde_saphyr::options! { strict_booleans: true };
        serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())
    }

    /// The `.yaml` scenarios in `dir`, sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Self)>, ScenarioError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ScenarioError::Unreadable {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| Self::load(&p).map(|s| (p, s)))
            .collect()
    }
}
