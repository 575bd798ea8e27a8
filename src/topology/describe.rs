//! The YAML parser's errors in the topology's terms. A user sees "expected a whole number,
//! found the text \"1\"", never the library's wording (Rust type names, untagged enums,
//! option names, API hints, budget structs). Echoed text is escaped and shortened.

use serde_saphyr::Error as E;
use serde_saphyr::budget::BudgetBreach as B;

use super::strict;
use super::text;

/// Strict reading: booleans are `true`/`false` only (so `no` in `config` stays the text "no"),
/// no application tags (`!int 3`), duplicate keys refused; the parser's budget (alias bombs,
/// nesting) stays on.
pub fn parse_options() -> serde_saphyr::Options {
    let mut o = limits();
    o.strict_booleans = true;
    o.reject_unsupported_tags = true;
    o.reject_tagged_field_names = true;
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    o
}

/// Where a parser error points, for naming its field.
pub enum Anchor {
    /// At the key (or value) of the field in error.
    Field,
    /// At the mapping that lacks a field.
    Mapping,
    /// At an unknown key: name the mapping that holds it.
    ParentOfKey,
}

pub fn anchor(e: &E) -> Anchor {
    match e.without_snippet() {
        E::AliasError { error, .. } => anchor(error),
        E::SerdeMissingField { .. } => Anchor::Mapping,
        E::SerdeUnknownField { .. } | E::DuplicateMappingKey { .. } => Anchor::ParentOfKey,
        _ => Anchor::Field,
    }
}

/// The first explicit tag (`!int 3`, `!!str x`) in `source`, with its 1-based line and column.
/// serde-saphyr resolves some local tags (`!int`) as core ones, so tags are refused here,
/// before the typed parse: a topology is plain YAML. A syntax error ends the scan; the typed
/// parse reports it.
pub fn first_tag(source: &str) -> Option<(u64, u64, String)> {
    use serde_saphyr::granit_parser::{Event, Parser};
    for item in Parser::new_from_str(source) {
        let Ok((event, span)) = item else {
            return None;
        };
        let tag = match event {
            Event::Scalar(_, _, _, tag)
            | Event::SequenceStart(_, _, tag)
            | Event::MappingStart(_, _, tag) => tag,
            _ => None,
        };
        if let Some(tag) = tag {
            return Some((
                span.start.line() as u64,
                span.start.col() as u64 + 1,
                // As written: `!!int`, not its resolved `tag:yaml.org,2002:int`.
                tag.to_string().replacen("tag:yaml.org,2002:", "!!", 1),
            ));
        }
    }
    None
}

/// The parser's defaults with a nesting limit that fits a topology (its deepest field is
/// 5 levels down) rather than any YAML: deep documents are refused before they cost stack.
pub(super) fn limits() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    o.budget = Some(budget);
    o
}

pub(super) const MAX_DEPTH: usize = 16;

const ONE_DOCUMENT: &str =
    "the file holds more than one YAML document (a `---` line); a topology is one document";

/// One line describing `e`.
pub fn describe(e: &E) -> String {
    match e.without_snippet() {
        E::AliasError { error, .. } => describe(error),
        E::SerdeUnknownField {
            field, expected, ..
        } => format!(
            "unknown field {}; expected one of {}",
            text::ident(field),
            expected.join(", ")
        ),
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => format!(
            "{} is not allowed here; write one of {}",
            text::show(variant),
            expected.join(", ")
        ),
        E::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!(
            "expected {}, found {}",
            words_expected(expected),
            words_found(unexpected)
        ),
        E::SerdeInvalidLength { expected, .. } => format!(
            "wrong number of entries; expected {}",
            words_expected(expected)
        ),
        E::InvalidScalar { ty, .. } => format!("expected {}", words_expected(ty)),
        E::InvalidBooleanStrict { .. } => format!("expected {}", strict::FLAG),
        E::NullIntoString { .. } => "expected text, found nothing (null)".into(),
        E::Unexpected { expected, .. } => format!("expected {}", words_expected(expected)),
        E::DuplicateMappingKey { key, .. } => match key {
            Some(k) => format!(
                "duplicate key {}: a key may appear only once in a mapping",
                text::ident(k)
            ),
            None => "duplicate key: a key may appear only once in a mapping".into(),
        },
        E::MultipleDocuments { .. } => ONE_DOCUMENT.into(),
        E::UnsupportedTag { tag, .. } | E::TaggedStructFieldName { tag, .. } => format!(
            "the tag {} is not allowed; write plain values without `!` tags",
            text::show(tag)
        ),
        E::TaggedScalarCannotDeserializeIntoString { .. } => {
            "tagged values are not allowed; write plain text without `!` tags".into()
        }
        E::Eof { .. } => "the file ends too early: it is empty or incomplete".into(),
        E::UnknownAnchor { .. } => {
            "an alias (`*name`) refers to an anchor that is not defined".into()
        }
        E::InvalidUtf8Input => "the file is not UTF-8 text".into(),
        E::MergeKeyNotAllowed { .. } | E::MergeValueNotMapOrSeqOfMaps { .. } => {
            "a merge key (`<<`) must refer to a mapping or a list of mappings".into()
        }
        E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => {
            "aliases (`*name`) expand too much for a topology; write the values out".into()
        }
        E::Budget { breach, .. } => match breach {
            B::Depth { .. } => format!(
                "the file is nested too deeply for a topology (more than {MAX_DEPTH} levels)"
            ),
            B::Documents { .. } => ONE_DOCUMENT.into(),
            B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => {
                "the file uses too many anchors or aliases for a topology".into()
            }
            _ => "the file is too large for a topology (too many values or too much text)".into(),
        },
        E::IndentationError { .. } => "wrong indentation".into(),
        // The YAML scanner's syntax messages ("unclosed bracket '['") are about YAML, not about
        // the library: kept, on one line.
        E::ExternalMessage { msg, .. } => text::line(msg, 200),
        E::Message { msg, .. } => text::line(msg, 200),
        _ => "this is not valid in a topology at this point".into(),
    }
}

/// serde's "expected" phrases (type names, visitor texts) in the format's words.
fn words_expected(e: &str) -> String {
    let w = match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "i8" | "i16" | "i32" | "i64" | "i128" => {
            strict::WHOLE
        }
        "f32" | "f64" => "a number",
        "a boolean" | "boolean" | "bool" => strict::FLAG,
        "a string" | "string" | "a borrowed string" | "string scalar" => "text",
        "a sequence" | "sequence" | "sequence start" => "a list",
        "a map" | "map" | "mapping" | "mapping start" => "a mapping (field: value)",
        "scalar" | "a scalar" => "a single value",
        "variant identifier" | "field identifier" => "a field name",
        _ if e.starts_with("struct ") => "a mapping (field: value)",
        _ if e.starts_with("enum ") || e.starts_with("unit variant") => "one of the allowed words",
        _ if e.starts_with("a sequence") => "a list",
        _ => return text::line(e, 120),
    };
    w.to_string()
}

/// serde's "unexpected" phrases (`string "x"`, ``integer `3` ``, `map`) in the format's words.
fn words_found(u: &str) -> String {
    let inner = |s: &str| text::line(s.trim_matches('`'), 40);
    if let Some(s) = u.strip_prefix("string ") {
        // serde has quoted it with escapes already: only shorten it.
        format!("the text {}", text::line(s, 90))
    } else if let Some(s) = u
        .strip_prefix("integer ")
        .or_else(|| u.strip_prefix("floating point "))
    {
        format!("the number {}", inner(s))
    } else if let Some(s) = u.strip_prefix("boolean ") {
        inner(s)
    } else {
        match u {
            "map" => "a mapping".into(),
            "sequence" => "a list".into(),
            "unit value" | "null" | "none" | "Option value" => "nothing (null)".into(),
            _ => text::line(u, 90),
        }
    }
}
