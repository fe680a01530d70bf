//! Escaping what a probe target said before anyone displays it.
//!
//! Probe output (a command's stdout and stderr, an HTTP body, a server's
//! error text) is written by the watched system, not by Warden. Shown raw,
//! an ANSI escape could rewrite the operator's terminal, a carriage return
//! or newline could forge a log line, and a bidi override could make text
//! read differently from what it is. So every control character (C0, DEL,
//! C1) and the bidi formatting characters become a visible `\u{..}` escape
//! before the text reaches an observation, a log line, a notice or the
//! API. The dashboard also renders all data as text, never as HTML.

use std::borrow::Cow;

/// Whether `c` must not reach a display raw.
fn dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| dangerous(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if dangerous(c) && !keep(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Multi-line output (a body, stderr): newlines and tabs stay, every other
/// control character is escaped.
pub fn escape_output(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// One line (a reason, an error): every control character is escaped,
/// newlines included, so the text cannot start a line of its own.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_and_control_characters_are_made_visible() {
        assert_eq!(
            escape_output("\u{1b}[31mred\u{1b}[0m\r\nnext\tcol\u{7}\u{9b}2J"),
            "\\u{1b}[31mred\\u{1b}[0m\\u{d}\nnext\tcol\\u{7}\\u{9b}2J"
        );
        assert_eq!(escape_line("a\nb\tc"), "a\\u{a}b\\u{9}c");
        assert_eq!(escape_line("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(
            escape_output("plain <b>text</b> é"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(escape_line("one line"), Cow::Borrowed(_)));
    }
}
