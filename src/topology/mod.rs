//! The topology file: parse (serde mirror with `deny_unknown_fields`), locate (field path →
//! line:column), validate (pure, collects every problem) into the model later layers trust.
//! Nothing here touches the system beyond reading the one file it is given.

mod commands;
mod describe;
#[cfg(test)]
mod group_tests;
pub mod model;
pub mod raw;
pub mod slots;
pub mod spans;
pub mod strict;
pub mod text;
pub mod users;
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

impl Diagnostic {
    /// A diagnostic that prints as one line: control characters escaped and, as a last resort
    /// behind `text::show` at the places that echo input, path and message shortened.
    pub fn new(
        file: &str,
        line: Option<u64>,
        column: Option<u64>,
        severity: Severity,
        path: String,
        message: String,
    ) -> Diagnostic {
        Diagnostic {
            file: text::line(file, 300),
            line,
            column,
            severity,
            path: text::line(&path, 200),
            message: text::line(&message, 600),
        }
    }
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

impl TopologyError {
    /// `topology is invalid: N errors`.
    pub fn summary(&self) -> String {
        let errors = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        format!(
            "topology is invalid: {errors} error{}",
            if errors == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{d}")?;
        }
        write!(f, "{}", self.summary())
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
    let fail = |message: String| TopologyError {
        diagnostics: vec![Diagnostic::new(
            &file,
            None,
            None,
            Severity::Error,
            String::new(),
            message,
        )],
    };
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() > MAX_FILE_BYTES
    {
        return Err(fail(too_large(meta.len())));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read topology: {e}")))?;
    let source =
        String::from_utf8(bytes).map_err(|_| fail("the file is not UTF-8 text".to_string()))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&source, &file, &base)
}

/// Largest topology file read. Real topologies are a few kilobytes; this bounds memory and
/// the size of anything echoed back.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

fn too_large(bytes: u64) -> String {
    format!(
        "the file is too large for a topology ({bytes} bytes; the limit is {} MiB)",
        MAX_FILE_BYTES >> 20
    )
}

/// Parse and validate topology text. `file` names it in messages; relative paths in it are
/// resolved against `base_dir`.
pub fn parse(source: &str, file: &str, base_dir: &Path) -> Result<Loaded, TopologyError> {
    let one =
        |line: Option<u64>, column: Option<u64>, path: String, message: String| TopologyError {
            diagnostics: vec![Diagnostic::new(
                file,
                line,
                column,
                Severity::Error,
                path,
                message,
            )],
        };
    if source.len() as u64 > MAX_FILE_BYTES {
        return Err(one(
            None,
            None,
            String::new(),
            too_large(source.len() as u64),
        ));
    }
    if let Some((line, column, tag)) = describe::first_tag(source) {
        let path = SpanIndex::build(source)
            .path_at(Pos { line, column })
            .unwrap_or_default();
        return Err(one(
            Some(line),
            Some(column),
            path,
            format!(
                "the tag {} is not allowed; write plain values without `!` tags",
                text::show(&tag)
            ),
        ));
    }
    let raw: raw::RawTopology =
        serde_saphyr::from_str_with_options(source, describe::parse_options()).map_err(|e| {
            let loc = e.location();
            let (line, column) = (loc.map(|l| l.line()), loc.map(|l| l.column()));
            // Name the field the parser stopped at.
            let path = match (line, column) {
                (Some(line), Some(column)) => {
                    let spans = SpanIndex::build(source);
                    let pos = Pos { line, column };
                    match describe::anchor(&e) {
                        describe::Anchor::Field => spans.path_at(pos),
                        describe::Anchor::Mapping => spans.value_at(pos),
                        describe::Anchor::ParentOfKey => spans
                            .path_at(pos)
                            .and_then(|p| p.rfind(['.', '[']).map(|i| p[..i].to_string())),
                    }
                    .unwrap_or_default()
                }
                _ => String::new(),
            };
            one(line, column, path, describe::describe(&e))
        })?;
    let spans = SpanIndex::build(source);
    let (topology, problems) = validate::validate(&raw, base_dir);
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|p| {
            let pos: Option<Pos> = spans.find(&p.path);
            Diagnostic::new(
                file,
                pos.map(|x| x.line),
                pos.map(|x| x.column),
                p.severity,
                p.path,
                p.message,
            )
        })
        .collect();
    diagnostics.sort_by_key(|d| (d.line, d.column));
    match topology {
        Some(topology) => Ok(Loaded {
            topology,
            warnings: diagnostics,
        }),
        None => Err(TopologyError { diagnostics }),
    }
}

/// The JSON Schema of the topology format, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::RawTopology);
    serde_json::to_value(schema).unwrap_or_default()
}
