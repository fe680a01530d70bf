//! The grammar: text to [`Parsed`], then [`check_types`].
//!
//! ```text
//! condition := field operator value
//! field     := name path?
//! path      := ( "." key | "[" index "]" | "[" string "]" )+      (body / stdout only)
//! operator  := "==" | "!=" | "<" | "<=" | ">" | ">="
//!            | "contains" | "not contains" | "matches" | "not matches"
//! value     := integer | decimal | duration | string | "true" | "false" | "null"
//! ```
//!
//! Whitespace is allowed between the parts and around them. A hand-written
//! parser rather than a parser library: the language is tiny and the error
//! messages matter more than the grammar.

use regex::RegexBuilder;

use super::ast::{Field, Literal, Op, Parsed, Segment, check_types, is_key_char};

use super::ConditionError;

/// The fields every kind shares, in the order error messages list them.
pub(super) const SHARED_FIELDS: &[&str] = &[
    "status",
    "exit_code",
    "latency",
    "cert_expires_in",
    "since_last_heartbeat",
    "connected",
    "body",
    "stdout",
    "stderr",
    "error",
];

/// Every field name, for error messages: the shared ones, then those the
/// kinds declare.
pub(super) fn field_list() -> String {
    let mut names: Vec<&str> = SHARED_FIELDS.to_vec();
    names.extend(crate::probes::kind_facts().map(|spec| spec.name));
    format!("{}, or a JSON path such as body.status", names.join(", "))
}

/// The operators, for error messages.
pub(super) const OPERATOR_LIST: &str =
    "==, !=, <, <=, >, >=, contains, not contains, matches, not matches";

/// Compiled regexes are bounded so a pathological pattern in a config file
/// cannot take a lot of memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Parses a trimmed expression.
pub(super) fn parse(text: &str) -> Result<Parsed, ConditionError> {
    let mut parser = Parser { src: text, pos: 0 };
    parser.skip_ws();
    if parser.at_end() {
        return Err(ConditionError::Empty);
    }
    let field = parser.field()?;
    parser.skip_ws();
    let op = parser.operator(&field)?;
    parser.skip_ws();
    let value = parser.value(op)?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(ConditionError::TrailingInput {
            column: parser.column(),
            rest: parser.rest().to_owned(),
        });
    }
    check_types(&field, op, &value)?;
    let regex = match (&value, op.is_regex()) {
        (Literal::Str(pattern), true) => Some(
            RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| ConditionError::BadRegex {
                    pattern: pattern.clone(),
                    reason: error.to_string(),
                })?,
        ),
        _ => None,
    };
    Ok(Parsed {
        field,
        op,
        value,
        regex,
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A cursor over the expression. `pos` is a byte offset that always sits on
/// a char boundary: it only moves by whole chars.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// 1-based column of the cursor, in chars.
    fn column(&self) -> usize {
        self.src.get(..self.pos).map_or(0, |s| s.chars().count()) + 1
    }

    /// Consumes chars while `keep` holds and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or("")
    }

    /// The next word-ish token, quoted, for "found ..." in messages.
    fn found(&self) -> String {
        let rest = self.rest();
        if rest.is_empty() {
            return "end of input".to_owned();
        }
        let token: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        format!("\"{token}\"")
    }

    fn field(&mut self) -> Result<Field, ConditionError> {
        if !self
            .peek()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        {
            return Err(ConditionError::ExpectedField {
                column: self.column(),
                found: self.found(),
            });
        }
        let name = self.take_while(is_name_char);
        let field = match name {
            "status" => Field::Status,
            "exit_code" => Field::ExitCode,
            "latency" => Field::Latency,
            "cert_expires_in" => Field::CertExpiresIn,
            "since_last_heartbeat" => Field::SinceLastHeartbeat,
            "connected" => Field::Connected,
            "body" => Field::Body("body"),
            "stdout" => Field::Body("stdout"),
            "stderr" => Field::Stderr,
            "error" => Field::Error,
            _ => match crate::probes::kind_facts().find(|spec| spec.name == name) {
                Some(spec) => Field::Kind(spec),
                None => {
                    return Err(ConditionError::UnknownField {
                        name: name.to_owned(),
                    });
                }
            },
        };
        if !matches!(self.peek(), Some('.' | '[')) {
            return Ok(field);
        }
        let Field::Body(body) = field else {
            return Err(ConditionError::BadPath(format!(
                "{name} has no fields; only body (or stdout) takes a JSON path such as body.status"
            )));
        };
        let mut path = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.bump();
                    let key = self.take_while(is_key_char);
                    if key.is_empty() {
                        return Err(ConditionError::BadPath(format!(
                            "expected a key after \".\" at column {} in the JSON path (write [\"key\"] for keys with other characters)",
                            self.column()
                        )));
                    }
                    path.push(Segment::Key(key.to_owned()));
                }
                Some('[') => {
                    self.bump();
                    path.push(self.bracket()?);
                }
                _ => break,
            }
        }
        Ok(Field::Json(body, path))
    }

    /// After `[`: an index or a quoted key, then `]`.
    fn bracket(&mut self) -> Result<Segment, ConditionError> {
        let segment = match self.peek() {
            Some('"') => Segment::Key(self.string()?),
            Some(c) if c.is_ascii_digit() => {
                let digits = self.take_while(|c| c.is_ascii_digit());
                let index = digits.parse::<usize>().map_err(|_| {
                    ConditionError::BadPath(format!("array index {digits} is too large"))
                })?;
                Segment::Index(index)
            }
            _ => {
                return Err(ConditionError::BadPath(format!(
                    "expected an array index or a quoted key after \"[\" at column {}, found {}",
                    self.column(),
                    self.found()
                )));
            }
        };
        if self.peek() != Some(']') {
            return Err(ConditionError::BadPath(format!(
                "expected \"]\" at column {} in the JSON path, found {}",
                self.column(),
                self.found()
            )));
        }
        self.bump();
        Ok(segment)
    }

    fn operator(&mut self, field: &Field) -> Result<Op, ConditionError> {
        let Some(first) = self.peek() else {
            return Err(ConditionError::MissingOperator {
                field: field.label(),
                found: "end of input".to_owned(),
            });
        };
        if first.is_ascii_alphabetic() {
            let word = self.take_while(is_name_char);
            return match word {
                "contains" => Ok(Op::Contains),
                "matches" => Ok(Op::Matches),
                "not" => {
                    self.skip_ws();
                    match self.take_while(is_name_char) {
                        "contains" => Ok(Op::NotContains),
                        "matches" => Ok(Op::NotMatches),
                        other => Err(ConditionError::UnknownOperator {
                            found: format!("not {other}").trim_end().to_owned(),
                        }),
                    }
                }
                other => Err(ConditionError::UnknownOperator {
                    found: other.to_owned(),
                }),
            };
        }
        if first.is_ascii_punctuation() && first != '"' && first != '-' {
            let symbol = self.take_while(|c| matches!(c, '=' | '!' | '<' | '>' | '~' | '&' | '|'));
            let symbol = if symbol.is_empty() {
                // Some other punctuation: report just that char.
                let start = self.pos;
                self.bump();
                self.src.get(start..self.pos).unwrap_or("")
            } else {
                symbol
            };
            return match symbol {
                "==" => Ok(Op::Eq),
                "!=" => Ok(Op::Ne),
                "<" => Ok(Op::Lt),
                "<=" => Ok(Op::Le),
                ">" => Ok(Op::Gt),
                ">=" => Ok(Op::Ge),
                other => Err(ConditionError::UnknownOperator {
                    found: other.to_owned(),
                }),
            };
        }
        Err(ConditionError::MissingOperator {
            field: field.label(),
            found: self.found(),
        })
    }

    fn value(&mut self, op: Op) -> Result<Literal, ConditionError> {
        match self.peek() {
            None => Err(ConditionError::MissingValue {
                operator: op.to_string(),
            }),
            Some('"') => Ok(Literal::Str(self.string()?)),
            Some(c) if c.is_ascii_digit() => self.number(),
            Some('-') if self.peek_second().is_some_and(|c| c.is_ascii_digit()) => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let column = self.column();
                match self.take_while(is_name_char) {
                    "true" => Ok(Literal::Bool(true)),
                    "false" => Ok(Literal::Bool(false)),
                    "null" => Ok(Literal::Null),
                    word => Err(ConditionError::BadValue {
                        column,
                        found: format!("\"{word}\" (strings need double quotes)"),
                    }),
                }
            }
            Some(_) => Err(ConditionError::BadValue {
                column: self.column(),
                found: self.found(),
            }),
        }
    }

    /// A double-quoted string with `\"` and `\\` escapes; the cursor is on
    /// the opening quote.
    fn string(&mut self) -> Result<String, ConditionError> {
        let open = self.column();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(ConditionError::UnterminatedString { column: open }),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let column = self.column() - 1;
                    match self.bump() {
                        Some(c @ ('"' | '\\')) => out.push(c),
                        Some(escape) => return Err(ConditionError::BadEscape { column, escape }),
                        None => return Err(ConditionError::UnterminatedString { column: open }),
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// An integer, a decimal or a duration, optionally negative.
    fn number(&mut self) -> Result<Literal, ConditionError> {
        let negative = self.peek() == Some('-');
        if negative {
            self.bump();
        }
        let mut body = self
            .take_while(|c| c.is_ascii_alphanumeric() || c == '.')
            .to_owned();
        let sign = if negative { "-" } else { "" };
        if !body.is_empty() && body.chars().all(|c| c.is_ascii_digit()) {
            let text = format!("{sign}{body}");
            return text
                .parse::<i64>()
                .map(Literal::Int)
                .map_err(|_| ConditionError::BadNumber {
                    text,
                    reason: "out of range".to_owned(),
                });
        }
        if body.contains('.') && !body.chars().any(|c| c.is_ascii_alphabetic()) {
            let text = format!("{sign}{body}");
            let valid = body
                .split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('.'));
            return match text.parse::<f64>() {
                Ok(number) if valid && number.is_finite() => Ok(Literal::Float(number)),
                _ => Err(ConditionError::BadNumber {
                    text,
                    reason: "expected digits, a decimal point and digits, e.g. 0.5".to_owned(),
                }),
            };
        }
        // A duration. humantime also reads `1h 30m`, so take further
        // number+unit groups separated by spaces.
        loop {
            let saved = self.pos;
            self.skip_ws();
            let next = self.take_while(|c| c.is_ascii_alphanumeric() || c == '.');
            let is_group = next.starts_with(|c: char| c.is_ascii_digit())
                && next.chars().any(|c| c.is_ascii_alphabetic());
            if saved == self.pos || !is_group {
                self.pos = saved;
                break;
            }
            body.push(' ');
            body.push_str(next);
        }
        let text = format!("{sign}{body}");
        let duration =
            humantime::parse_duration(&body).map_err(|error| ConditionError::BadDuration {
                text: text.clone(),
                reason: error.to_string(),
            })?;
        let nanos =
            i128::try_from(duration.as_nanos()).map_err(|_| ConditionError::BadDuration {
                text: text.clone(),
                reason: "out of range".to_owned(),
            })?;
        Ok(Literal::Duration(if negative { -nanos } else { nanos }))
    }
}
