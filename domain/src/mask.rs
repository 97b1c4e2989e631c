//! Masking of personal identifiers for logs and for people who have not proved who they are.

/// `2580200606` → `258****606`.
pub fn national_id(s: &str) -> String {
    keep_ends(s, 3, 3)
}

/// `09145128136` → `0914***8136`.
pub fn mobile(s: &str) -> String {
    keep_ends(s, 4, 4)
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest; short inputs are fully starred.
pub fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..head].iter().collect();
    out.push_str(&"*".repeat(chars.len() - head - tail));
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::mobile("09145128136"), "0914***8136");
        assert_eq!(super::national_id("2580200606"), "258****606");
        assert_eq!(super::keep_ends("abc", 2, 2), "***");
        // Exactly head + tail characters: all starred; one more: one star in the middle.
        assert_eq!(super::keep_ends("abcd", 2, 2), "****");
        assert_eq!(super::keep_ends("abcde", 2, 2), "ab*de");
        assert_eq!(super::keep_ends("abcdefg", 1, 3), "a***efg");
        assert_eq!(super::keep_ends("۰۹۱۴۵۱۲۸۱۳۶", 4, 4), "۰۹۱۴***۸۱۳۶", "characters, not bytes");
    }
}
