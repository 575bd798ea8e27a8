//! The topology file: parse (serde mirror with `deny_unknown_fields`), locate (field path →
//! line:column), validate (pure, collects every problem) into the model later layers trust.
//! Nothing here touches the system beyond reading the one file it is given.

#[cfg(test)]
mod group_tests;
pub mod model;
pub mod raw;
pub mod slots;
pub mod spans;
pub mod validate;
#[cfg(test)]
mod validate_tests;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::*;
pub use validate::Severity;

use spans::{Pos, SpanIndex};

/// A located problem, ready to print as `file:line:column: severity: path: message`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.path.is_empty() {
            write!(f, ": {sev}: {}", self.message)
        } else {
            write!(f, ": {sev}: {}: {}", self.path, self.message)
        }
    }
}

/// The topology could not be used; holds every problem found.
#[derive(Debug, thiserror::Error)]
pub struct TopologyError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        write!(
            f,
            "topology is invalid: {errors} error{}",
            if errors == 1 { "" } else { "s" }
        )
    }
}

/// A valid topology and the warnings found while validating it.
#[derive(Debug)]
pub struct Loaded {
    pub topology: Topology,
    pub warnings: Vec<Diagnostic>,
}

/// Read and validate a topology file.
pub fn load(path: &Path) -> Result<Loaded, TopologyError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| TopologyError {
        diagnostics: vec![Diagnostic {
            file: file.clone(),
            line: None,
            column: None,
            severity: Severity::Error,
            path: String::new(),
            message: format!("cannot read topology: {e}"),
        }],
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&source, &file, &base)
}

/// Parse and validate topology text. `file` names it in messages; relative paths in it are
/// resolved against `base_dir`.
pub fn parse(source: &str, file: &str, base_dir: &Path) -> Result<Loaded, TopologyError> {
    let raw: raw::RawTopology = serde_saphyr::from_str(source).map_err(|e| {
        let loc = e.location();
        TopologyError {
            diagnostics: vec![Diagnostic {
                file: file.to_string(),
                line: loc.map(|l| l.line()),
                column: loc.map(|l| l.column()),
                severity: Severity::Error,
                path: String::new(),
                message: serde_message(&e),
            }],
        }
    })?;
    let spans = SpanIndex::build(source);
    let (topology, problems) = validate::validate(&raw, base_dir);
    let diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|p| {
            let pos: Option<Pos> = spans.find(&p.path);
            Diagnostic {
                file: file.to_string(),
                line: pos.map(|x| x.line),
                column: pos.map(|x| x.column),
                severity: p.severity,
                path: p.path,
                message: p.message,
            }
        })
        .collect();
    let mut diagnostics = diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    match topology {
        Some(topology) => Ok(Loaded {
            topology,
            warnings: diagnostics,
        }),
        None => Err(TopologyError { diagnostics }),
    }
}

/// The parser's own message without its source snippet (we print file:line:col ourselves).
fn serde_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    // Drop a trailing " at line X column Y" that duplicates our prefix.
    let text = match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    text.lines().next().unwrap_or("invalid YAML").to_string()
}

/// The JSON Schema of the topology format, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::RawTopology);
    serde_json::to_value(schema).unwrap_or_default()
}
