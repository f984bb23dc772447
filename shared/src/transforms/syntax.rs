//! One line of a transform: comment stripping, the target, and Mixmax's
//! `a.0.b` index form rewritten to CEL's `a[0].b`, remembering where every
//! character came from so that CEL's errors point into the user's text.

use super::{Target, TransformError};

pub struct ParsedLine {
    pub target: Target,
    /// CEL source.
    pub expression: String,
    /// For each char of `expression`, its 1-based column in the original line.
    origin: Vec<usize>,
}

impl ParsedLine {
    /// The line's column for a 1-based column of the CEL source.
    pub fn column_of(&self, cel_column: usize) -> usize {
        let i = cel_column.saturating_sub(1);
        match self.origin.get(i) {
            Some(c) => *c,
            None => self.origin.last().map_or(1, |c| c + 1),
        }
    }
}

const TARGETS: &str = "email, name, first_name, last_name, phone_number or fields.<key>";

fn error(line: usize, column: usize, message: impl Into<String>) -> TransformError {
    TransformError {
        line,
        column,
        message: message.into(),
    }
}

/// The line up to a `#` that is not inside a string literal.
fn strip_comment(chars: &[char]) -> &[char] {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return &chars[..i],
            None => {}
        }
    }
    chars
}

fn parse_target(text: &str, line: usize, column: usize) -> Result<Target, TransformError> {
    Ok(match text {
        "email" => Target::Email,
        "name" => Target::Name,
        "first_name" => Target::FirstName,
        "last_name" => Target::LastName,
        "phone_number" => Target::PhoneNumber,
        _ => match text.strip_prefix("fields.") {
            Some(key)
                if (1..=64).contains(&key.len())
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Target::Field(key.to_string())
            }
            Some(_) => {
                return Err(error(
                    line,
                    column,
                    "a custom field key is 1 to 64 letters, digits, `_` or `-`",
                ));
            }
            None if text.is_empty() => {
                return Err(error(
                    line,
                    column,
                    format!("expected a target before `=`: {TARGETS}"),
                ));
            }
            None => {
                return Err(error(
                    line,
                    column,
                    format!("unknown target `{text}`: use {TARGETS}"),
                ));
            }
        },
    })
}

#[cfg(test)]
pub fn parse_line(raw: &str, line: usize) -> Result<Option<ParsedLine>, TransformError> {
    parse_line_in(raw, line, Targets::Contact)
}

/// What the targets of a transform's lines are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// A contact's fields (inbound triggers).
    Contact,
    /// Dotted paths in a JSON body (outbound webhook payloads).
    Paths,
}

/// Levels a payload target may have (`a.b.c`...).
pub const MAX_PATH_DEPTH: usize = 8;

fn parse_path(text: &str, line: usize, column: usize) -> Result<Target, TransformError> {
    let keys: Vec<String> = text.split('.').map(str::to_string).collect();
    let key_ok = |k: &String| {
        (1..=64).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'$')
    };
    if text.is_empty() {
        return Err(error(
            line,
            column,
            "expected a target before `=`: a field of the body sent, e.g. `text` or `attachments.0.title`",
        ));
    }
    if keys.len() > MAX_PATH_DEPTH || !keys.iter().all(key_ok) {
        return Err(error(
            line,
            column,
            format!(
                "target `{text}`: a dotted path of at most {MAX_PATH_DEPTH} keys, each 1 to 64 letters, digits, `_`, `-` or `$`"
            ),
        ));
    }
    Ok(Target::Path(keys))
}

pub fn parse_line_in(
    raw: &str,
    line: usize,
    targets: Targets,
) -> Result<Option<ParsedLine>, TransformError> {
    let chars: Vec<char> = raw.chars().collect();
    let chars = strip_comment(&chars);
    let Some(first) = chars.iter().position(|c| !c.is_whitespace()) else {
        return Ok(None);
    };
    let Some(eq) = chars.iter().position(|&c| c == '=') else {
        return Err(error(line, first + 1, "expected `target = expression`"));
    };
    let target_text: String = chars[..eq].iter().collect::<String>().trim().to_string();
    let target = match targets {
        Targets::Contact => parse_target(&target_text, line, first + 1)?,
        Targets::Paths => parse_path(&target_text, line, first + 1)?,
    };
    if chars.get(eq + 1) == Some(&'=') {
        return Err(error(
            line,
            eq + 1,
            "`==` compares; use a single `=` to set a field",
        ));
    }
    let start = eq
        + 1
        + chars[eq + 1..]
            .iter()
            .take_while(|c| c.is_whitespace())
            .count();
    let end = chars.len() - chars.iter().rev().take_while(|c| c.is_whitespace()).count();
    if start >= end {
        return Err(error(
            line,
            eq + 2,
            format!("nothing after `=`: give an expression for {target}"),
        ));
    }
    let (expression, origin) = mixmax_indices(&chars[start..end], start + 1);
    Ok(Some(ParsedLine {
        target,
        expression,
        origin,
    }))
}

/// Rewrites `.0` after a name, `]` or `)` to `[0]`, outside string literals.
/// `first_column` is the 1-based column of `expr[0]` in the line.
fn mixmax_indices(expr: &[char], first_column: usize) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(expr.len());
    let mut origin = Vec::with_capacity(expr.len());
    let mut push = |out: &mut String, c: char, col: usize| {
        out.push(c);
        origin.push(col);
    };
    let mut i = 0;
    let mut quote: Option<char> = None;
    // Whether the previous token can be indexed (a name, `]` or `)`), as
    // opposed to a number, where `.5` is part of the literal.
    let mut indexable = false;
    let mut in_number = false;
    while i < expr.len() {
        let c = expr[i];
        let col = first_column + i;
        if let Some(q) = quote {
            push(&mut out, c, col);
            if c == '\\' && i + 1 < expr.len() {
                push(&mut out, expr[i + 1], col + 1);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
                indexable = false;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            push(&mut out, c, col);
            i += 1;
            continue;
        }
        if c == '.' && indexable && expr.get(i + 1).is_some_and(char::is_ascii_digit) {
            let digits = expr[i + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            push(&mut out, '[', col);
            for k in 0..digits {
                push(&mut out, expr[i + 1 + k], col + 1 + k);
            }
            push(&mut out, ']', col + digits);
            i += 1 + digits;
            indexable = true;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            indexable = !in_number;
        } else if c.is_ascii_digit() {
            if !indexable {
                in_number = true;
            }
        } else {
            in_number = false;
            indexable = c == ']' || c == ')';
        }
        push(&mut out, c, col);
        i += 1;
    }
    (out, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(s: &str) -> String {
        mixmax_indices(&s.chars().collect::<Vec<_>>(), 1).0
    }

    #[test]
    fn mixmax_index_form() {
        assert_eq!(rewrite("a.0.b"), "a[0].b");
        assert_eq!(rewrite("a.10.b.2"), "a[10].b[2]");
        assert_eq!(rewrite("a[0].b.1"), "a[0].b[1]");
        assert_eq!(rewrite("x1.0"), "x1[0]");
        assert_eq!(rewrite("1.5 + a.0"), "1.5 + a[0]");
        assert_eq!(rewrite("f(a).0"), "f(a)[0]");
        assert_eq!(rewrite("\"a.0\" + b.0"), "\"a.0\" + b[0]");
        assert_eq!(rewrite("'it\\'s.0' + c"), "'it\\'s.0' + c");
    }

    #[test]
    fn lines() {
        assert!(parse_line("   # only a comment", 1).unwrap().is_none());
        assert!(parse_line("", 1).unwrap().is_none());
        let p = parse_line("name = a.first + \" # \" + a.last # note", 1)
            .unwrap()
            .unwrap();
        assert_eq!(p.target, Target::Name);
        assert_eq!(p.expression, "a.first + \" # \" + a.last");
        let p = parse_line("fields.source_system = 'x'", 1)
            .unwrap()
            .unwrap();
        assert_eq!(p.target, Target::Field("source_system".into()));

        let e = parse_line("emial = a", 3).err().unwrap();
        assert_eq!((e.line, e.column), (3, 1));
        assert!(e.message.contains("unknown target `emial`"));
        let e = parse_line("  email == a", 1).err().unwrap();
        assert_eq!(e.column, 9);
        let e = parse_line("email =   ", 1).err().unwrap();
        assert!(e.message.contains("nothing after"));
        let e = parse_line("just words", 2).err().unwrap();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(parse_line("fields.bad key = 1", 1).is_err());
        assert!(parse_line("fields. = 1", 1).is_err());
    }

    #[test]
    fn columns_map_back_through_the_rewrite() {
        let p = parse_line("email = a.0.b +", 1).unwrap().unwrap();
        assert_eq!(p.expression, "a[0].b +");
        // `+` is char 8 of the CEL source and column 15 of the line.
        assert_eq!(p.column_of(8), 15);
        assert_eq!(p.column_of(9), 16, "end of input points just past the line");
    }
}
