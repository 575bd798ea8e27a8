//! Echoing the operator's own text back in a diagnostic: one line, control characters escaped,
//! long values shortened with their size. A 10 MB `name` must not come back as 10 MB of
//! stderr, and a key with a newline must not split the one-line diagnostic.

/// Characters of a value shown before it is cut.
pub const SHOWN: usize = 80;

/// `s` quoted, escaped and shortened: `"abc"`, `"a\nb"`, `"aaaa…" (10485760 bytes)`.
pub fn show(s: &str) -> String {
    quoted(s, '"')
}

/// A field or key name: `` `name` ``, escaped and shortened like [`show`].
pub fn ident(s: &str) -> String {
    quoted(s, '`')
}

fn quoted(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len().min(SHOWN) + 16);
    out.push(q);
    let mut cut = false;
    for (n, c) in s.chars().enumerate() {
        if n == SHOWN {
            cut = true;
            break;
        }
        push_escaped(&mut out, c, q);
    }
    if cut {
        out.push('…');
        out.push(q);
        out.push_str(&format!(" ({} bytes)", s.len()));
    } else {
        out.push(q);
    }
    out
}

/// `s` as one line of at most `max` characters (control characters escaped; when cut, the
/// full size is given). For whole messages, as a last resort behind [`show`].
pub fn line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 16);
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push_str(&format!("… ({} bytes)", s.len()));
            break;
        }
        push_escaped(&mut out, c, '\0');
    }
    out
}

fn push_escaped(out: &mut String, c: char, q: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' if q != '\0' => out.push_str("\\\\"),
        c if c == q => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
            out.push_str(&format!("\\u{{{:x}}}", c as u32))
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_values_are_escaped_and_shortened() {
        assert_eq!(show("abc"), "\"abc\"");
        assert_eq!(show("a\nb\"c"), "\"a\\nb\\\"c\"");
        let big = "x".repeat(10 << 20);
        let s = show(&big);
        assert!(s.len() < 120, "{s}");
        assert!(s.ends_with("…\" (10485760 bytes)"), "{s}");
        assert_eq!(ident("a\nb"), "`a\\nb`");
        assert_eq!(line("one\ntwo", 100), "one\\ntwo");
        assert_eq!(line("abcdef", 3), "abc… (6 bytes)");
    }
}
