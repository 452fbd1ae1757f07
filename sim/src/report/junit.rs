//! JUnit XML, the test-report format CI systems read (GitLab, Jenkins, GitHub actions that
//! render test results): one `<testsuite>` of `<testcase>`s, each passing, failing
//! (`<failure>`), erroring (`<error>`) or skipped (`<skipped>`).
//!
//! The output is plain XML 1.0: text and attributes are escaped, and characters XML 1.0 cannot
//! carry at all (control characters other than tab, newline, carriage return) are replaced by
//! U+FFFD, so a panic message with odd bytes still yields a file that parses.

use std::fmt::Write as _;

/// How a test case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Passed,
    /// An assertion failed: `message` is one line, `body` the details.
    Failed {
        message: String,
        body: String,
    },
    /// The test could not run (e.g. its input does not load).
    Error {
        message: String,
        body: String,
    },
    Skipped {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub classname: String,
    /// Wall-clock seconds.
    pub time_s: f64,
    pub verdict: Verdict,
    /// Shown by most CI systems next to the test case.
    pub system_out: Option<String>,
}

/// One `<testsuites>` document holding the single `<testsuite>` named `suite`.
pub fn render(suite: &str, cases: &[TestCase]) -> String {
    let count = |f: fn(&Verdict) -> bool| cases.iter().filter(|c| f(&c.verdict)).count();
    let failures = count(|v| matches!(v, Verdict::Failed { .. }));
    let errors = count(|v| matches!(v, Verdict::Error { .. }));
    let skipped = count(|v| matches!(v, Verdict::Skipped { .. }));
    let time: f64 = cases.iter().map(|c| c.time_s).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\"",
        cases.len()
    );
    let suite = escape_attr(suite);
    let _ = writeln!(out, "<testsuites name=\"{suite}\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"{suite}\" {counts}>");
    for case in cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            escape_attr(&case.name),
            escape_attr(&case.classname),
            case.time_s
        );
        let inner = match &case.verdict {
            Verdict::Passed => String::new(),
            Verdict::Failed { message, body } => {
                format!(
                    "      <failure message=\"{}\" type=\"violation\">{}</failure>\n",
                    escape_attr(message),
                    escape(body)
                )
            }
            Verdict::Error { message, body } => {
                format!(
                    "      <error message=\"{}\" type=\"bad_input\">{}</error>\n",
                    escape_attr(message),
                    escape(body)
                )
            }
            Verdict::Skipped { message } => format!("      <skipped message=\"{}\"/>\n", escape_attr(message)),
        };
        let system_out = case
            .system_out
            .as_ref()
            .map_or(String::new(), |text| format!("      <system-out>{}</system-out>\n", escape(text)));
        if inner.is_empty() && system_out.is_empty() {
            out.push_str("/>\n");
        } else {
            let _ = write!(out, ">\n{inner}{system_out}    </testcase>\n");
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Escapes text for XML content (line breaks and tabs kept as they are).
pub fn escape(text: &str) -> String {
    escape_with(text, false)
}

/// Escapes an attribute value: also line breaks and tabs, as character references, which
/// attribute-value normalisation would otherwise turn into spaces.
pub fn escape_attr(text: &str) -> String {
    escape_with(text, true)
}

fn escape_with(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\r' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(escape("a<b & 'c' \"d\">"), "a&lt;b &amp; &apos;c&apos; &quot;d&quot;&gt;");
        assert_eq!(escape("x\u{1}y\n"), "x\u{FFFD}y\n");
        assert_eq!(escape_attr("x\ny"), "x&#10;y");
    }

    #[test]
    fn counts_and_structure() {
        let case = |name: &str, verdict| TestCase {
            name: name.into(),
            classname: "repsim.check".into(),
            time_s: 0.5,
            verdict,
            system_out: None,
        };
        let xml = render(
            "repsim check",
            &[
                case("a.toml", Verdict::Passed),
                case("b.toml", Verdict::Failed { message: "1/2 seeds".into(), body: "seed 2 <lost>".into() }),
                case("c.toml", Verdict::Error { message: "bad".into(), body: String::new() }),
            ],
        );
        assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"0\" time=\"1.500\""), "{xml}");
        assert!(xml.contains("<testcase name=\"a.toml\" classname=\"repsim.check\" time=\"0.500\"/>"), "{xml}");
        assert!(xml.contains("seed 2 &lt;lost&gt;</failure>"), "{xml}");
        assert_eq!(xml.matches("<testsuite ").count(), 1);
    }
}
