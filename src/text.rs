//! Bounding text that came from somewhere else before Warden keeps it.
//!
//! An endpoint's answer can be any size, and a parser's error message can
//! quote it (serde_json quotes a string of the wrong type whole). Such text
//! ends up in audit rows and the API, so it is cut first.

/// The most bytes of a remote answer's error Warden keeps.
pub(crate) const REMOTE_ERROR_BYTES: usize = 512;

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

/// A reason about a remote answer, bounded to [`REMOTE_ERROR_BYTES`].
pub(crate) fn remote_reason(text: String) -> String {
    if text.len() <= REMOTE_ERROR_BYTES {
        return text;
    }
    let mut cut = excerpt(&text, REMOTE_ERROR_BYTES - 3);
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let long = format!("invalid type: string \"{}\"", "é".repeat(1000));
        let cut = remote_reason(long);
        assert!(cut.len() <= REMOTE_ERROR_BYTES, "{}", cut.len());
        assert!(cut.ends_with("..."));
        assert_eq!(remote_reason("short".to_owned()), "short");
        assert_eq!(excerpt("héllo", 2), "h");
    }
}
