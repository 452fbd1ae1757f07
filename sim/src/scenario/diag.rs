//! Diagnostics: an error message, where it is, and what to write instead; rendered the way
//! rustc renders its errors.

use std::ops::Range;

use super::tree::Span;

/// One error found while reading a scenario.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Diag {
    pub message: String,
    pub span: Span,
    pub help: Option<String>,
}

impl Diag {
    pub fn new(message: impl Into<String>, span: Span) -> Diag {
        Diag { message: message.into(), span, help: None }
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }
}

/// Renders a diagnostic about the scenario file `path` whose text is `source`.
pub(crate) fn render(diag: &Diag, source: &str, path: &str) -> String {
    render_with_title(&format!("error: {}", diag.message), diag, source, path)
}

/// Renders a diagnostic caused by the `--set` override `override_text`. Spans, if any, point
/// into the file (values given on the command line have none).
pub(crate) fn render_override(diag: &Diag, override_text: &str, source: &str, path: &str) -> String {
    let title = format!("error in --set {override_text}: {}", diag.message);
    render_with_title(&title, diag, source, path)
}

fn render_with_title(title: &str, diag: &Diag, source: &str, path: &str) -> String {
    let mut out = title.to_string();
    if let Some(span) = &diag.span {
        out.push('\n');
        out.push_str(&snippet(source, path, span.clone()));
    }
    if let Some(help) = &diag.help {
        out.push_str("\nhelp: ");
        out.push_str(&help.replace('\n', "\n      "));
    }
    out
}

/// `(line, column)`, both 1-based, column counted in characters, of a byte offset.
pub(crate) fn line_col(source: &str, offset_bytes: usize) -> (usize, usize) {
    let offset = char_boundary_at_or_before(source, offset_bytes);
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn char_boundary_at_or_before(source: &str, offset_bytes: usize) -> usize {
    let mut offset = offset_bytes.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The `--> path:line:col` location line, the source line and a caret marker under the span
/// (its first line only, when it covers several).
fn snippet(source: &str, path: &str, span: Range<usize>) -> String {
    let start = char_boundary_at_or_before(source, span.start);
    let (line, column) = line_col(source, start);
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[line_start..].find('\n').map_or(source.len(), |i| line_start + i);
    let line_text = source[line_start..line_end].trim_end_matches('\r');
    let end = char_boundary_at_or_before(source, span.end.max(start)).min(line_start + line_text.len());
    let marker_len = source.get(start..end).map_or(0, |s| s.chars().count()).max(1);
    let padding: String = line_text.chars().take(column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let gutter = " ".repeat(line.to_string().len());
    format!(
        "{gutter}--> {path}:{line}:{column}\n\
         {gutter} |\n\
         {line} | {line_text}\n\
         {gutter} | {padding}{marker}",
        marker = "^".repeat(marker_len),
    )
}

/// Edit distance (insertions, deletions, substitutions) between two words, by characters.
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo and no other
/// candidate is as close.
pub(crate) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    let max_distance = match word.chars().count() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    let scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (levenshtein(&word_lower, &c.to_ascii_lowercase()), c))
        .filter(|(distance, _)| *distance <= max_distance)
        .collect();
    let best = scored.iter().map(|(distance, _)| *distance).min()?;
    let mut at_best = scored.iter().filter(|(distance, _)| *distance == best);
    match (at_best.next(), at_best.next()) {
        // A tie (`pg4` is as close to `pg1` as to `pg2`) suggests nothing useful.
        (Some((_, c)), None) => Some(c),
        _ => None,
    }
}

/// "did you mean `x`? " or "", to prefix a help text.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates).map_or(String::new(), |c| format!("did you mean `{c}`? "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let source = "a = 1\nbé = 2\n";
        assert_eq!(line_col(source, 0), (1, 1));
        assert_eq!(line_col(source, 6), (2, 1));
        // `=` after the two-byte `é` is the 4th character of line 2.
        assert_eq!(line_col(source, 10), (2, 4));
        assert_eq!(line_col(source, 1000), (3, 1));
    }

    #[test]
    fn renders_like_rustc() {
        let source = "x = 1\n\nlaytency = \"1ms\"\n";
        let diag = Diag::new("unknown key `laytency` in [network]", Some(7..15)).help("expected one of: latency");
        let text = render(&diag, source, "s.toml");
        let expected = "error: unknown key `laytency` in [network]\n \
                        --> s.toml:3:1\n  \
                        |\n\
                        3 | laytency = \"1ms\"\n  \
                        | ^^^^^^^^\n\
                        help: expected one of: latency";
        assert_eq!(text, expected);
    }

    #[test]
    fn multi_line_spans_mark_the_first_line() {
        let source = "[cluster]\nnodes = []\n";
        let text = render(&Diag::new("m", Some(0..20)), source, "f");
        assert!(text.ends_with("1 | [cluster]\n  | ^^^^^^^^^"), "{text}");
    }

    #[test]
    fn typo_suggestions() {
        assert_eq!(levenshtein("laytency", "latency"), 1);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(closest("laytency", ["loss", "latency"]), Some("latency"));
        assert_eq!(closest("zzz", ["loss", "latency"]), None);
        assert_eq!(closest("pg4", ["pg1", "pg2"]), None);
        assert_eq!(did_you_mean("los", ["loss"]), "did you mean `loss`? ");
    }
}
