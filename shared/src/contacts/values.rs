//! Email addresses and phone numbers, parsed once at the edge into values
//! that are known to be valid and normalised.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Trimmed and lower-cased; a syntax error is explained.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = |why: &str| Err(format!("email {t:?} is not valid: {why}"));
        if t.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = t.rsplit_once('@') else {
            return bad("it has no @");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before @ must be 1 to 64 characters");
        }
        if local.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '@' | '<' | '>' | ',' | ';' | '"')
        }) {
            return bad("the part before @ has a character addresses cannot hold");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return bad("dots in the part before @ must sit between characters");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("the domain needs a dot, as in example.com");
        }
        for label in &labels {
            let ok = (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return bad("the domain must be letters, digits and hyphens between dots");
            }
        }
        let tld = labels.last().expect("two or more labels");
        if tld.len() < 2
            || !(tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--"))
        {
            return bad("the domain must end in a top-level domain such as .com");
        }
        Ok(Self(t.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Digits with the country code, no `+` (Heymarket's `12155556677`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `+1 (215) 555-6677`, `0044 20 7946 0958`, `12155556677`, and
    /// ten-digit North American numbers without their country code.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = |why: &str| Err(format!("phone_number {t:?} is not valid: {why}"));
        let (plus, rest) = match t.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        if rest
            .chars()
            .any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')')))
        {
            return bad("use digits, optionally with +, spaces, dashes, dots and parentheses");
        }
        let mut digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if !plus {
            if let Some(international) = digits.strip_prefix("00") {
                digits = international.to_string();
            } else if digits.len() == 10 && !digits.starts_with(['0', '1']) {
                // A North American number written without its country code.
                digits.insert(0, '1');
            }
        }
        if digits.starts_with('0') {
            return bad("it needs its country code (no country code starts with 0)");
        }
        if !(8..=15).contains(&digits.len()) {
            return bad("with its country code a number has 8 to 15 digits");
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("  John.Doe+tag@Example.COM ")
                .unwrap()
                .as_str(),
            "john.doe+tag@example.com"
        );
        assert_eq!(Email::parse("a@b.co").unwrap().as_str(), "a@b.co");
        assert_eq!(
            Email::parse("x@mail.xn--p1ai").unwrap().as_str(),
            "x@mail.xn--p1ai"
        );
        for bad in [
            "",
            "john",
            "@example.com",
            "john@",
            "john@example",
            "john@@example.com",
            "jo hn@example.com",
            "john@exa mple.com",
            "john@-example.com",
            "john@example.c",
            "john@example.123",
            ".john@example.com",
            "jo..hn@example.com",
            "john@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(
            Email::parse("john@example")
                .unwrap_err()
                .contains("needs a dot")
        );
    }

    #[test]
    fn phone_numbers() {
        for (input, want) in [
            ("12155556677", "12155556677"),
            ("+1 (215) 555-6677", "12155556677"),
            ("215.555.6677", "12155556677"),
            ("+44 20 7946 0958", "442079460958"),
            ("0044 20 7946 0958", "442079460958"),
            ("+49 30 901820", "4930901820"),
        ] {
            assert_eq!(PhoneNumber::parse(input).unwrap().as_str(), want, "{input}");
        }
        for bad in [
            "",
            "abc",
            "555-6677",
            "+1 215 555 6677 ext 9",
            "0215556677",
            "1234567890123456",
            "+0 123 456 789",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
