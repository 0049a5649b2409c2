//! YAML text to a small tree of maps, lists and scalars, each with its line
//! and column.
//!
//! Built on saphyr-parser's events. Everything a role file does not need and
//! an attacker could abuse is refused at the event that introduces it:
//! anchors and aliases (an alias bomb never expands), merge keys, tags,
//! non-scalar or duplicate keys, nesting deeper than [`MAX_DEPTH`], more than
//! [`MAX_NODES`] nodes.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting of maps and lists; a role needs 4.
pub const MAX_DEPTH: usize = 8;
/// Most maps, lists and scalars in one file.
pub const MAX_NODES: usize = 250_000;

/// A position: line and column counted from 1 (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    fn of(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// One node of the tree.
#[derive(Debug)]
pub(crate) struct Node {
    pub mark: Mark,
    pub value: Value,
}

#[derive(Debug)]
pub(crate) enum Value {
    /// A scalar's text, and whether it was written plain (unquoted): only a
    /// plain scalar can be a null, a boolean or a number.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in file order; keys are scalars, unique.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar key (keys are always scalars here).
    pub(crate) fn key_text(&self) -> &str {
        match &self.value {
            Value::Scalar { text, .. } => text,
            _ => "",
        }
    }

    /// Whether this is an empty plain scalar or one of YAML 1.2's null spellings.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if is_null(text))
    }
}

/// A YAML problem: where, in which field, what.
#[derive(Debug)]
pub(crate) struct YamlError {
    pub mark: Mark,
    pub field: String,
    pub message: String,
}

pub(crate) fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

enum Frame {
    Seq {
        mark: Mark,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Each key's text and line, for finding duplicates without a
        /// quadratic search (a map may have a hundred thousand keys).
        seen: HashMap<String, usize>,
    },
}

/// The field path of the innermost open node, for errors.
fn path(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Seq { items, .. } => out.push_str(&format!("[{}]", items.len())),
            Frame::Map { key: Some(key), .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&crate::rules::key_segment(key.key_text()));
            }
            Frame::Map { key: None, .. } => {}
        }
    }
    out
}

/// Parses every document of `text`. Empty documents (nothing, or only
/// comments, between `---` markers) are left out.
pub(crate) fn documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut nodes = 0usize;
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(x) => x,
            Err(e) => {
                return Err(YamlError {
                    mark: Mark {
                        line: e.marker().line(),
                        column: e.marker().col() + 1,
                    },
                    field: path(&stack),
                    message: format!("YAML syntax: {}", e.info()),
                })
            }
        };
        let mark = Mark::of(&span);
        let fail = |stack: &[Frame], message: &str| YamlError {
            mark,
            field: path(stack),
            message: message.to_owned(),
        };
        let refuse_extras = |stack: &[Frame], anchor: usize, tagged: bool| {
            if anchor != 0 {
                Err(fail(stack, "anchors (&name) are not allowed in role files"))
            } else if tagged {
                Err(fail(stack, "tags (!name) are not allowed in role files"))
            } else {
                Ok(())
            }
        };
        let node = match event {
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => continue,
            Event::Alias(_) => {
                return Err(fail(
                    &stack,
                    "aliases (*name) are not allowed in role files",
                ))
            }
            Event::Scalar(text, style, anchor, tag) => {
                refuse_extras(&stack, anchor, tag.is_some())?;
                Node {
                    mark,
                    value: Value::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                }
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                refuse_extras(&stack, anchor, tag.is_some())?;
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(
                        &stack,
                        &format!("nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                // A container about to be a map key is refused here already.
                if let Some(Frame::Map { key: None, .. }) = stack.last() {
                    return Err(fail(&stack, "keys must be plain text, not lists or maps"));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq {
                        mark,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        mark,
                        entries: Vec::new(),
                        key: None,
                        seen: HashMap::new(),
                    }
                });
                nodes += 1;
                if nodes > MAX_NODES {
                    return Err(fail(&stack, &format!("more than {MAX_NODES} YAML nodes")));
                }
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { mark, items }) => Node {
                    mark,
                    value: Value::Seq(items),
                },
                Some(Frame::Map { mark, entries, .. }) => Node {
                    mark,
                    value: Value::Map(entries),
                },
                None => return Err(fail(&stack, "unbalanced YAML events")),
            },
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(fail(&stack, &format!("more than {MAX_NODES} YAML nodes")));
        }
        match stack.last_mut() {
            None => {
                if !node.is_null() {
                    docs.push(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    let Value::Scalar { text, plain } = &node.value else {
                        // Containers were refused at their start.
                        return Err(fail(&stack, "keys must be plain text, not lists or maps"));
                    };
                    if *plain && text == "<<" {
                        return Err(YamlError {
                            mark: node.mark,
                            field: path(&stack),
                            message: "merge keys (<<) are not allowed in role files".into(),
                        });
                    }
                    if let Some(first_line) = seen.get(text.as_str()) {
                        let message = format!(
                            "duplicate key {} (first at line {first_line})",
                            crate::rules::shown(text),
                        );
                        return Err(YamlError {
                            mark: node.mark,
                            field: path(&stack),
                            message,
                        });
                    }
                    seen.insert(text.clone(), node.mark.line);
                    *key = Some(node);
                }
            },
        }
    }
    if !stack.is_empty() {
        return Err(YamlError {
            mark: Mark { line: 1, column: 1 },
            field: String::new(),
            message: "unexpected end of YAML".into(),
        });
    }
    Ok(docs)
}

/// What a plain scalar means under YAML 1.2's core schema, when it is not
/// text: role files want text, and a bare `2024` or `true` where a name is
/// expected is more likely a mistake than a name.
pub(crate) fn non_string_type(text: &str) -> Option<&'static str> {
    if is_null(text) {
        return Some("nothing (null)");
    }
    if matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE") {
        return Some("a boolean");
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if digits(unsigned, 10)
        || text.strip_prefix("0o").is_some_and(|s| digits(s, 8))
        || text.strip_prefix("0x").is_some_and(|s| digits(s, 16))
    {
        return Some("a number");
    }
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Some("a number");
    }
    // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (digits(int, 10) && (frac.is_empty() || digits(frac, 10)))
                || (int.is_empty() && digits(frac, 10))
        }
        None => digits(mantissa, 10),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10));
    if mantissa_ok && exponent_ok {
        return Some("a number");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_types() {
        for (text, kind) in [
            ("", Some("nothing (null)")),
            ("~", Some("nothing (null)")),
            ("true", Some("a boolean")),
            ("FALSE", Some("a boolean")),
            ("12", Some("a number")),
            ("-12", Some("a number")),
            ("0x1f", Some("a number")),
            ("0o17", Some("a number")),
            ("1.5", Some("a number")),
            (".5", Some("a number")),
            ("1e3", Some("a number")),
            ("1.", Some("a number")),
            ("-.inf", Some("a number")),
            (".nan", Some("a number")),
            ("yes", None),
            ("no", None),
            ("root", None),
            ("1h", None),
            ("v1.2", None),
            ("1.2.3", None),
            ("e3", None),
            (".", None),
            ("-", None),
        ] {
            assert_eq!(non_string_type(text), kind, "{text:?}");
        }
    }

    #[test]
    fn marks_are_one_based() {
        let docs = documents("a: 1\nbb:\n  - x\n").unwrap();
        let Value::Map(entries) = &docs[0].value else {
            panic!()
        };
        assert_eq!(entries[0].0.mark, Mark { line: 1, column: 1 });
        assert_eq!(entries[0].1.mark, Mark { line: 1, column: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].mark, Mark { line: 3, column: 5 });
    }

    #[test]
    fn refusals() {
        for (text, needle) in [
            ("a: &x 1\nb: *x\n", "anchors"),
            ("a: !!str 1\n", "tags"),
            ("a: 1\na: 2\n", "duplicate key"),
            ("<<: {a: 1}\n", "merge keys"),
            ("? [a]\n: 1\n", "keys must be plain"),
            ("a: [[[[[[[[[1]]]]]]]]]\n", "nested deeper"),
            ("a: [\n", "YAML syntax"),
        ] {
            let e = documents(text).unwrap_err();
            assert!(e.message.contains(needle), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn empty_documents_are_skipped() {
        assert_eq!(documents("").unwrap().len(), 0);
        assert_eq!(
            documents("# nothing\n---\n---\na: 1\n---\n").unwrap().len(),
            1
        );
    }
}
