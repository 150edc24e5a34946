//! Saved plans (`scar plan -o plan.json`): the plan, the desired graph it was made from (so
//! apply can re-read exactly what it needs to detect staleness), and versions.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, Plan};
use crate::model::DesiredGraph;

/// The content of a plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: String,
    /// The scar that wrote it.
    pub scar_version: String,
    /// The manifest directory it was made from.
    pub dir: String,
    /// The desired graph.
    pub desired: DesiredGraph,
    /// The plan.
    pub plan: Plan,
}

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a scar plan.
    #[error("{path} is not a scar plan file")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Written by an incompatible scar.
    #[error(
        "{path} has plan format {found}; this scar reads {FORMAT_VERSION} (make the plan again)"
    )]
    Version {
        /// The file.
        path: String,
        /// Its format version.
        found: String,
    },
}

/// Writes a plan file.
///
/// # Errors
/// On I/O failure.
pub fn save(path: &Path, file: &PlanFile) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(file).expect("invariant: plans serialise to JSON");
    std::fs::write(path, text + "\n").map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a plan file, refusing another major format version.
///
/// # Errors
/// On I/O failure, bad JSON or an incompatible version.
pub fn load(path: &Path) -> Result<PlanFile, Error> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let file: PlanFile = serde_json::from_str(&text).map_err(|source| Error::Parse {
        path: shown.clone(),
        source,
    })?;
    let major = |v: &str| v.split('.').next().unwrap_or_default().to_owned();
    if major(&file.format_version) != major(FORMAT_VERSION) {
        return Err(Error::Version {
            path: shown,
            found: file.format_version,
        });
    }
    Ok(file)
}
