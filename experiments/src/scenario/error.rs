//! Errors in a scenario file, each naming the file, the line and column, the table and
//! the field at fault, with the offending line quoted:
//!
//! ```text
//! scenario experiments/scenarios/x.toml, line 12, column 10, [[fault]] 2, field `target`:
//!   replica r7 does not exist (the cluster has 4 replicas: r0..r3)
//!    12 | target = "r7"
//! ```
//!
//! Spans come from the `toml` crate (its own errors, and `toml::Spanned` fields for
//! checks made after parsing); this module turns a byte span into a line, finds the
//! key written on that line and the table header above it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario file that could not be read, parsed or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// Something in the file is wrong; [`Located`] says where.
    #[error("{0}")]
    At(Box<Located>),
}

/// Where an error sits in a scenario file, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file (or `<text>` for a scenario given as a string).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The table the field sits in, as written: `[load]`, `[[fault]] 2`, or empty at
    /// the top level.
    pub table: String,
    /// The field at fault, when one is named on that line.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The line as written.
    pub snippet: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scenario {}, line {}, column {}",
            self.path.display(),
            self.line,
            self.column
        )?;
        if !self.table.is_empty() {
            write!(f, ", {}", self.table)?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(
            f,
            ":\n  {}\n  {:>4} | {}",
            self.message, self.line, self.snippet
        )
    }
}

/// The text of a scenario file, for turning spans into positions.
#[derive(Debug, Clone)]
pub struct SourceText<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> SourceText<'a> {
    /// The text of the file at `path`.
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        SourceText { path, text }
    }

    /// An error about the text at `span` (byte offsets); the field is the key written
    /// on that line, if any.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        self.error_with_field(span, None, message)
    }

    /// An error about the text at `span`, naming `field` (or the key on that line).
    pub fn error_with_field(
        &self,
        span: Range<usize>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line_text = &self.text[line_start..line_end];
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        let field = field.map(str::to_string).or_else(|| key_of_line(line_text));
        ScenarioError::At(Box::new(Located {
            path: self.path.to_path_buf(),
            line,
            column,
            table: self.table_at(line_end),
            field,
            message: message.into(),
            snippet: line_text.trim_end().to_string(),
        }))
    }

    /// The span of the key of the first line `key = …` inside the table whose header
    /// starts at `table_start` or its sub-tables (for errors reported at a whole
    /// table).
    pub fn key_span(&self, table_start: usize, key: &str) -> Option<Range<usize>> {
        let mut offset = table_start.min(self.text.len());
        let header_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let header = self.text[offset..header_end].trim();
        let name = header
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim()
            .to_string();
        offset = (header_end + 1).min(self.text.len());
        for line in self.text[offset..].split_inclusive('\n') {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                let inner = trimmed.trim_start_matches('[');
                if name.is_empty() || !inner.starts_with(&format!("{name}.")) {
                    return None;
                }
            }
            if key_of_line(trimmed).as_deref() == Some(key) {
                let start = offset + (line.len() - trimmed.len());
                return Some(start..start + key.len());
            }
            offset += line.len();
        }
        None
    }

    /// An error from the `toml` deserializer, placed at its span.
    pub fn from_toml(&self, err: &toml::de::Error) -> ScenarioError {
        let message = err.message().trim_end().to_string();
        match err.span() {
            Some(span) => self.error(span, message),
            None => self.error(0..0, message),
        }
    }

    /// The table header in force at byte `offset`: the last `[name]` or `[[name]]`
    /// line before it (or ending at it), with the entry number for arrays of tables.
    fn table_at(&self, offset: usize) -> String {
        let mut current = String::new();
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for line in self.text[..offset].lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
                let name = name.trim().to_string();
                if is_table_name(&name) {
                    let n = counts.entry(name.clone()).or_insert(0);
                    *n += 1;
                    current = format!("[[{name}]] {n}");
                }
            } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next())
                && is_table_name(name.trim())
            {
                current = format!("[{}]", name.trim());
            }
        }
        current
    }
}

/// Whether `name` can be a table header (so a line of a multi-line array is not one).
fn is_table_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The key of a `key = value` line, if the line is one.
fn key_of_line(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    is_table_name(key).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "seed = 1\n\n[load]\nduration = \"x\"\n\n[[fault]]\nat = 1\n\n[[fault]]\nat = 2\ntarget = \"r9\"\n";

    fn located(err: ScenarioError) -> Located {
        match err {
            ScenarioError::At(l) => *l,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn spans_become_line_column_table_and_field() {
        let src = SourceText::new(Path::new("s.toml"), TEXT);
        let at = TEXT.find("\"r9\"").unwrap();
        let l = located(src.error(at..at + 4, "no such replica"));
        assert_eq!((l.line, l.column), (11, 10));
        assert_eq!(l.table, "[[fault]] 2");
        assert_eq!(l.field.as_deref(), Some("target"));
        assert_eq!(l.snippet, "target = \"r9\"");
        let shown = ScenarioError::At(Box::new(l)).to_string();
        assert!(
            shown.starts_with("scenario s.toml, line 11, column 10, [[fault]] 2, field `target`:"),
            "{shown}"
        );
        assert!(shown.contains("no such replica"), "{shown}");
    }

    #[test]
    fn toml_errors_keep_their_position() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Load {
            duration: f64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Top {
            seed: u64,
            load: Load,
        }
        let text = "seed = 1\n[load]\nduration = \"x\"\n";
        let err = toml::from_str::<Top>(text).unwrap_err();
        let l = located(SourceText::new(Path::new("t.toml"), text).from_toml(&err));
        assert_eq!((l.line, l.table.as_str()), (3, "[load]"));
        assert_eq!(l.field.as_deref(), Some("duration"));
        assert!(l.message.contains("expected f64"), "{}", l.message);
    }

    #[test]
    fn a_line_without_a_key_names_no_field() {
        assert_eq!(key_of_line("[load]"), None);
        assert_eq!(key_of_line("  at = 3"), Some("at".into()));
        assert_eq!(key_of_line("groups = [[\"r0\"]]"), Some("groups".into()));
    }
}
