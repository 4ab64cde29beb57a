//! YAML to a tree of [`Node`]s that remember where they were written.
//!
//! Scalars are resolved with the YAML 1.2 core schema (`yes` is a string, `0x1f` a number),
//! anchors and aliases are expanded, and `<<` merge keys are honoured because shared stage
//! settings are commonly written that way.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};

/// One YAML value and where it is in the file.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// Bytes of the source the node was written in; for an alias, those of the anchored node.
    pub span: Range<usize>,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A string, and how it was quoted (which matters for finding a character inside it).
    Str(String, ScalarStyle),
    Seq(Vec<Node>),
    /// Entries in file order; keys are scalars and duplicates are reported while loading.
    Map(Vec<(Node, Node)>),
}

/// A problem found while loading, at a byte offset.
#[derive(Debug)]
pub(crate) struct LoadError {
    pub at: usize,
    pub message: String,
}

/// More nodes than this (counting every alias expansion) is refused, so that a file of nested
/// aliases cannot make the server build a tree of billions of nodes.
const MAX_NODES: usize = 100_000;

/// Loads a one-document YAML text. Structural errors stop loading (the parser cannot go on
/// after them); duplicate keys and bad tags are collected and loading goes on.
pub(crate) fn load(text: &str) -> (Option<Node>, Vec<LoadError>) {
    let mut loader = Loader {
        text,
        stack: Vec::new(),
        anchors: HashMap::new(),
        errors: Vec::new(),
        nodes: 0,
        root: None,
        documents: 0,
    };
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => {
                if let Err(error) = loader.event(event, span) {
                    loader.errors.push(error);
                    return (None, loader.errors);
                }
            }
            Err(error) => {
                let marker = error.marker();
                let at = marker
                    .byte_offset()
                    .unwrap_or_else(|| byte_of_char(text, marker.index()));
                loader.errors.push(LoadError {
                    at,
                    message: tidy_scan_message(&error.info()),
                });
                return (None, loader.errors);
            }
        }
    }
    (loader.root, loader.errors)
}

struct Loader<'t> {
    text: &'t str,
    /// Collections being built, innermost last.
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    errors: Vec<LoadError>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

/// A collection being built.
struct Frame {
    node: Node,
    /// The anchor to record the collection under once it is complete (0 for none).
    anchor: usize,
    /// In a mapping, the key waiting for its value.
    key: Option<Node>,
}

impl Loader<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), LoadError> {
        let at = self.offset(&span);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(LoadError {
                        at,
                        message: "a gantry file holds one yaml document; remove this `---` or split the file".to_owned(),
                    });
                }
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(LoadError {
                        at,
                        message: "alias to an unknown anchor".to_owned(),
                    });
                };
                self.count(count_nodes(&node), at)?;
                self.push(node);
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, at)?;
                let value = self.scalar(text, style, tag.as_deref(), at);
                let node = Node {
                    span: at..self.end(&span),
                    value,
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node);
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.count(1, at)?;
                self.check_collection_tag(tag.as_deref(), "seq", at);
                let node = Node {
                    span: at..at,
                    value: Value::Seq(Vec::new()),
                };
                self.stack.push(Frame {
                    node,
                    anchor,
                    key: None,
                });
            }
            Event::MappingStart(_, anchor, tag) => {
                self.count(1, at)?;
                self.check_collection_tag(tag.as_deref(), "map", at);
                let node = Node {
                    span: at..at,
                    value: Value::Map(Vec::new()),
                };
                self.stack.push(Frame {
                    node,
                    anchor,
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Frame {
                    mut node, anchor, ..
                }) = self.stack.pop()
                else {
                    return Ok(());
                };
                node.span.end = self.end(&span).max(node.span.start);
                if let Value::Map(entries) = &mut node.value {
                    self.finish_map(entries);
                }
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node);
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds a finished node to the collection being built, or makes it the document.
    fn push(&mut self, node: Node) {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return;
        };
        match &mut frame.node.value {
            Value::Seq(items) => items.push(node),
            // A mapping receives a key, then its value.
            Value::Map(entries) => match frame.key.take() {
                Some(key) => entries.push((key, node)),
                None => frame.key = Some(node),
            },
            _ => {}
        }
    }

    /// Applies `<<` merge keys and reports duplicate keys.
    fn finish_map(&mut self, entries: &mut Vec<(Node, Node)>) {
        let mut merged = Vec::new();
        let mut own = Vec::new();
        for (key, value) in entries.drain(..) {
            if matches!(&key.value, Value::Str(k, ScalarStyle::Plain) if k == "<<") {
                match value.value {
                    Value::Map(entries) => merged.extend(entries),
                    Value::Seq(items) => {
                        for item in items {
                            match item.value {
                                Value::Map(entries) => merged.extend(entries),
                                _ => self.errors.push(LoadError {
                                    at: item.span.start,
                                    message: "a `<<` merge takes mappings".to_owned(),
                                }),
                            }
                        }
                    }
                    _ => self.errors.push(LoadError {
                        at: value.span.start,
                        message: "a `<<` merge takes a mapping or a list of mappings".to_owned(),
                    }),
                }
            } else {
                own.push((key, value));
            }
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (key, value) in own {
            let Some(name) = key_text(&key) else {
                self.errors.push(LoadError {
                    at: key.span.start,
                    message: "a mapping key must be a plain value, not a list or a mapping"
                        .to_owned(),
                });
                continue;
            };
            if let Some(first) = seen.get(&name) {
                let (line, _) = line_col(self.text, *first);
                self.errors.push(LoadError {
                    at: key.span.start,
                    message: format!("duplicate key {name:?} (first at line {line})"),
                });
                continue;
            }
            seen.insert(name, key.span.start);
            entries.push((key, value));
        }
        // Merged entries never override the mapping's own keys; of two merged, the first wins.
        for (key, value) in merged {
            if let Some(name) = key_text(&key)
                && let std::collections::hash_map::Entry::Vacant(e) = seen.entry(name)
            {
                e.insert(key.span.start);
                entries.push((key, value));
            }
        }
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Tag>,
        at: usize,
    ) -> Value {
        let text = text.into_owned();
        let Some(tag) = tag else {
            return if style == ScalarStyle::Plain {
                resolve_plain(text)
            } else {
                Value::Str(text, style)
            };
        };
        let resolved = resolve_plain(text.clone());
        let fits = match &resolved {
            _ if tag.is_yaml_core_schema_tag("str") => return Value::Str(text, style),
            Value::Null => tag.is_yaml_core_schema_tag("null"),
            Value::Bool(_) => tag.is_yaml_core_schema_tag("bool"),
            Value::Int(_) => tag.is_yaml_core_schema_tag("int"),
            Value::Float(_) => tag.is_yaml_core_schema_tag("float"),
            _ => false,
        };
        if fits {
            return resolved;
        }
        if let (Value::Int(i), true) = (&resolved, tag.is_yaml_core_schema_tag("float")) {
            return Value::Float(*i as f64);
        }
        if tag.parts() == ("!", "") {
            // The non-specific tag `!` asks for a string.
            return Value::Str(text, style);
        }
        let message = if tag.is_yaml_core_schema() {
            format!("{text:?} is not a valid {}", show_tag(tag))
        } else {
            format!("unsupported yaml tag {}", show_tag(tag))
        };
        self.errors.push(LoadError { at, message });
        Value::Str(text, style)
    }

    fn check_collection_tag(&mut self, tag: Option<&Tag>, expected: &str, at: usize) {
        if let Some(tag) = tag
            && !tag.is_yaml_core_schema_tag(expected)
        {
            self.errors.push(LoadError {
                at,
                message: format!("unsupported yaml tag {}", show_tag(tag)),
            });
        }
    }

    fn count(&mut self, nodes: usize, at: usize) -> Result<(), LoadError> {
        self.nodes += nodes;
        if self.nodes > MAX_NODES {
            return Err(LoadError {
                at,
                message: format!(
                    "the file expands to more than {MAX_NODES} values (through aliases?)"
                ),
            });
        }
        Ok(())
    }

    fn offset(&self, span: &Span) -> usize {
        span.start
            .byte_offset()
            .unwrap_or_else(|| byte_of_char(self.text, span.start.index()))
    }

    fn end(&self, span: &Span) -> usize {
        span.end
            .byte_offset()
            .unwrap_or_else(|| byte_of_char(self.text, span.end.index()))
    }
}

fn show_tag(tag: &Tag) -> String {
    let (handle, suffix) = tag.original_parts();
    format!("{handle}{suffix}")
}

/// A key as text; `None` for a collection used as a key.
fn key_text(key: &Node) -> Option<String> {
    Some(match &key.value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Str(s, _) => s.clone(),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count_nodes).sum(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
        _ => 0,
    }
}

/// The YAML 1.2 core schema for an untagged plain scalar.
fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = parse_int(&text) {
        return Value::Int(int);
    }
    if is_float(&text)
        && let Ok(float) = text.parse::<f64>()
    {
        return Value::Float(float);
    }
    Value::Str(text, ScalarStyle::Plain)
}

fn parse_int(text: &str) -> Option<i128> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i128::from_str_radix(hex, 16)
            .ok()
            .filter(|_| !hex.starts_with(['+', '-']));
    }
    if let Some(octal) = text.strip_prefix("0o") {
        return i128::from_str_radix(octal, 8)
            .ok()
            .filter(|_| !octal.starts_with(['+', '-']));
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(text: &str) -> bool {
    let text = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match fraction {
        Some(fraction) => {
            digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
        }
        None => !whole.is_empty() && digits(whole),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn tidy_scan_message(message: &str) -> String {
    let message = message.trim().trim_end_matches('.');
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "malformed yaml".to_owned(),
    }
}

fn byte_of_char(text: &str, index: usize) -> usize {
    text.char_indices()
        .nth(index)
        .map_or(text.len(), |(byte, _)| byte)
}

/// The 1-based line and character column of a byte offset.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

impl Node {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text, _) => Some(text),
            _ => None,
        }
    }

    /// A scalar as text, for fields that take any scalar as a string (`PORT: 8080`).
    pub(crate) fn scalar_text(&self, source: &str) -> Option<String> {
        match &self.value {
            Value::Str(text, _) => Some(text.clone()),
            // The number as written, so that `0x1F` or `1.10` reach a script unchanged.
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                source.get(self.span.clone()).map(str::to_owned)
            }
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// How a wrong value is named in a message: `a list`, `the string "x"`, `true`.
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            Value::Null => "empty".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => format!("the number {i}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Str(s, _) if s.chars().count() > 40 => "a string".to_owned(),
            Value::Str(s, _) => format!("the string {s:?}"),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The node as JSON; `None` for a number JSON cannot hold (`.inf`, `.nan`).
    pub(crate) fn to_json(&self) -> Result<serde_json::Value, usize> {
        use serde_json::Value as Json;
        Ok(match &self.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(i), _) => Json::from(i),
                (_, Ok(u)) => Json::from(u),
                _ => serde_json::Number::from_f64(*i as f64)
                    .map(Json::Number)
                    .ok_or(self.span.start)?,
            },
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .ok_or(self.span.start)?,
            Value::Str(s, _) => Json::String(s.clone()),
            Value::Seq(items) => {
                Json::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?)
            }
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(key, value)| Ok((key_text(key).unwrap_or_default(), value.to_json()?)))
                    .collect::<Result<_, usize>>()?,
            ),
        })
    }

    /// The byte in the source of the character at byte `offset` of this string's value: exact
    /// when the value is written as is (plain or quoted on one line without escapes, or a
    /// literal block), else at the same `${{` in the source, else at the string's start.
    pub(crate) fn source_offset(&self, source: &str, offset: usize) -> usize {
        let Value::Str(value, style) = &self.value else {
            return self.span.start;
        };
        let Some(before) = value.get(..offset) else {
            return self.span.start;
        };
        let content = match style {
            ScalarStyle::Plain => Some(self.span.start),
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Some(self.span.start + 1),
            ScalarStyle::Literal => literal_offset(source, &self.span, value, offset),
            _ => None,
        };
        if let Some(content) = content {
            if style == &ScalarStyle::Literal {
                return content;
            }
            if source
                .get(content..)
                .is_some_and(|rest| rest.starts_with(before))
            {
                return content + offset;
            }
        }
        // Find the same `${{` in the source and count from there.
        let nth = before.matches("${{").count();
        if nth > 0 {
            let value_anchor = before.rfind("${{").unwrap_or(0);
            let raw = source.get(self.span.clone()).unwrap_or("");
            if let Some((raw_anchor, _)) = raw.match_indices("${{").nth(nth - 1) {
                let start = self.span.start + raw_anchor;
                let between = &value[value_anchor..offset];
                if source
                    .get(start..)
                    .is_some_and(|rest| rest.starts_with(between))
                {
                    return start + between.len();
                }
                return start;
            }
        }
        self.span.start
    }
}

/// The source byte of `offset` in a literal block scalar: its lines are the source lines after
/// the `|` header, less the block's indentation.
fn literal_offset(source: &str, span: &Range<usize>, value: &str, offset: usize) -> Option<usize> {
    let block = source.get(span.clone())?;
    let header_end = block.find('\n')? + 1;
    let body = &block[header_end..];
    let indent = body
        .lines()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches(' ').len())?;
    let line_index = value[..offset].matches('\n').count();
    let column = offset - value[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut line_start = span.start + header_end;
    for _ in 0..line_index {
        line_start += source[line_start..].find('\n')? + 1;
    }
    let at = line_start + indent + column;
    let value_line = value[offset - column..].lines().next().unwrap_or("");
    source
        .get(at - column..)
        .filter(|rest| rest.starts_with(value_line))?;
    Some(at)
}
