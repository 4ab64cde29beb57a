//! The tools every check uses: [`Checker`] collects diagnostics, [`Fields`] reads one mapping
//! field by field, checking each value's type and building the JSON the model is read from.

use serde_json::{Map, Value as Json};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::yaml::{Node, Value, line_col};

/// Collects diagnostics for one file.
pub(crate) struct Checker<'s> {
    pub file: &'s str,
    pub source: &'s str,
    /// The providers of the server the file is checked for (`provider:` must name one),
    /// or `None` when it is checked on its own.
    pub providers: Option<&'s [&'s str]>,
    found: Vec<(usize, String)>,
}

impl<'s> Checker<'s> {
    pub fn new(file: &'s str, source: &'s str) -> Checker<'s> {
        Checker {
            file,
            source,
            providers: None,
            found: Vec::new(),
        }
    }

    /// Reports a problem at a byte offset of the file.
    pub fn error(&mut self, at: usize, message: impl Into<String>) {
        self.found.push((at, message.into()));
    }

    pub fn is_clean(&self) -> bool {
        self.found.is_empty()
    }

    /// The diagnostics in file order (problems found at one place keep the order they were
    /// found in).
    pub fn into_diagnostics(mut self) -> Diagnostics {
        self.found.sort_by_key(|(at, _)| *at);
        self.found.dedup();
        Diagnostics(
            self.found
                .into_iter()
                .map(|(at, message)| {
                    let (line, column) = line_col(self.source, at);
                    Diagnostic {
                        file: self.file.to_owned(),
                        line,
                        column,
                        message,
                    }
                })
                .collect(),
        )
    }

    /// `node` as a string, or a diagnostic naming `what` it should have been.
    pub fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        let text = node.as_str();
        if text.is_none() {
            self.error(
                node.span.start,
                format!("{what} must be a string, not {}", node.describe()),
            );
        }
        text
    }

    /// Any scalar as a string (`PORT: 8080` gives "8080"), for values that end up in an
    /// environment, a header or a parameter.
    pub fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = node.scalar_text(self.source);
        if text.is_none() {
            self.error(
                node.span.start,
                format!("{what} must be a string, not {}", node.describe()),
            );
        }
        text
    }

    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(
                    node.span.start,
                    format!("{what} must be a list, not {}", node.describe()),
                );
                None
            }
        }
    }
}

/// Reads one mapping (a pipeline, a stage, a step, …). Each typed getter checks its field,
/// reports what is wrong, and copies the value into the JSON for the model; [`Fields::finish`]
/// then reports every key no getter asked for, with the names that were expected.
pub(crate) struct Fields<'n> {
    node: &'n Node,
    entries: &'n [(Node, Node)],
    /// How the mapping is named in messages: `stage "build"`, `step 2 of stage "build"`.
    pub what: String,
    known: Vec<&'static str>,
    out: Map<String, Json>,
}

impl<'n> Fields<'n> {
    /// `None`, with a diagnostic, when `node` is not a mapping.
    pub fn new(
        cx: &mut Checker<'_>,
        node: &'n Node,
        what: impl Into<String>,
    ) -> Option<Fields<'n>> {
        let what = what.into();
        match &node.value {
            Value::Map(entries) => Some(Fields {
                node,
                entries,
                what,
                known: Vec::new(),
                out: Map::new(),
            }),
            _ => {
                cx.error(
                    node.span.start,
                    format!("{what} must be a mapping, not {}", node.describe()),
                );
                None
            }
        }
    }

    /// Where the mapping starts, for problems with the mapping as a whole.
    pub fn at(&self) -> usize {
        self.node.span.start
    }

    /// Renames the mapping in later messages (once its `id` or `name` is known).
    pub fn rename(&mut self, what: String) {
        self.what = what;
    }

    /// The field's value, if present and not empty (`key:` with nothing after it counts as
    /// absent, as it does for serde defaults).
    pub fn get(&mut self, name: &'static str) -> Option<&'n Node> {
        if !self.known.contains(&name) {
            self.known.push(name);
        }
        self.entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .map(|(_, value)| value)
            .filter(|value| !matches!(value.value, Value::Null))
    }

    /// The key node of a present field, to point at the key rather than the value.
    pub fn key(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(key, _)| key.as_str() == Some(name))
            .map(|(key, _)| key)
    }

    pub fn require(&mut self, cx: &mut Checker<'_>, name: &'static str) -> Option<&'n Node> {
        let node = self.get(name);
        if node.is_none() {
            cx.error(self.at(), format!("{} is missing {name:?}", self.what));
        }
        node
    }

    pub fn insert(&mut self, name: &str, value: Json) {
        self.out.insert(name.to_owned(), value);
    }

    /// A string field; the node is returned for positions.
    pub fn string(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
    ) -> Option<(&'n str, &'n Node)> {
        let node = self.get(name)?;
        self.string_node(cx, name, node)
    }

    pub fn required_string(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
    ) -> Option<(&'n str, &'n Node)> {
        let node = self.require(cx, name)?;
        self.string_node(cx, name, node)
    }

    fn string_node(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
        node: &'n Node,
    ) -> Option<(&'n str, &'n Node)> {
        let text = cx.string(node, &format!("{name:?}"))?;
        self.insert(name, Json::String(text.to_owned()));
        Some((text, node))
    }

    /// A field that takes any scalar as text.
    pub fn text(&mut self, cx: &mut Checker<'_>, name: &'static str) -> Option<(String, &'n Node)> {
        let node = self.get(name)?;
        let text = cx.text(node, &format!("{name:?}"))?;
        self.insert(name, Json::String(text.clone()));
        Some((text, node))
    }

    pub fn bool(&mut self, cx: &mut Checker<'_>, name: &'static str) -> Option<bool> {
        let node = self.get(name)?;
        match node.value {
            Value::Bool(value) => {
                self.insert(name, Json::Bool(value));
                Some(value)
            }
            _ => {
                cx.error(
                    node.span.start,
                    format!("{name:?} must be true or false, not {}", node.describe()),
                );
                None
            }
        }
    }

    /// A whole number that fits in a `u32` (counts, retries).
    pub fn count(&mut self, cx: &mut Checker<'_>, name: &'static str) -> Option<u32> {
        let node = self.get(name)?;
        match node.value {
            Value::Int(value) if u32::try_from(value).is_ok() => {
                self.insert(name, Json::from(value as u32));
                u32::try_from(value).ok()
            }
            _ => {
                cx.error(
                    node.span.start,
                    format!(
                        "{name:?} must be a whole number from 0 to {}, not {}",
                        u32::MAX,
                        node.describe()
                    ),
                );
                None
            }
        }
    }

    /// A duration written the human way (`90s`, `5m`, `1h30m`).
    pub fn duration(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
    ) -> Option<std::time::Duration> {
        let node = self.get(name)?;
        let Some(text) = node.as_str() else {
            let hint = if matches!(node.value, Value::Int(_) | Value::Float(_)) {
                "; add a unit, e.g. 30s or 5m"
            } else {
                ""
            };
            cx.error(
                node.span.start,
                format!(
                    "{name:?} must be a duration like 30s, 5m or 1h30m, not {}{hint}",
                    node.describe()
                ),
            );
            return None;
        };
        match crate::duration::parse(text) {
            Ok(duration) => {
                self.insert(name, Json::String(text.to_owned()));
                Some(duration)
            }
            Err(message) => {
                cx.error(node.span.start, format!("{name:?}: {message}"));
                None
            }
        }
    }

    /// One of a fixed set of words (`onInterrupt: rerun`).
    pub fn choice(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
        choices: &[&str],
    ) -> Option<(&'n str, &'n Node)> {
        let node = self.get(name)?;
        let text = cx.string(node, &format!("{name:?}"))?;
        if !choices.contains(&text) {
            cx.error(
                node.span.start,
                format!(
                    "{name:?} must be one of {}, not {text:?}{}",
                    choices.join(", "),
                    did_you_mean(text, choices)
                ),
            );
            return None;
        }
        self.insert(name, Json::String(text.to_owned()));
        Some((text, node))
    }

    /// A list of strings (`dependsOn`), each with its node.
    pub fn strings(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
    ) -> Option<Vec<(&'n str, &'n Node)>> {
        let node = self.get(name)?;
        let items = cx.list(node, &format!("{name:?}"))?;
        let strings: Vec<_> = items
            .iter()
            .filter_map(|item| Some((cx.string(item, &format!("an entry of {name:?}"))?, item)))
            .collect();
        if strings.len() == items.len() {
            self.insert(
                name,
                Json::Array(
                    strings
                        .iter()
                        .map(|(s, _)| Json::String((*s).to_owned()))
                        .collect(),
                ),
            );
        }
        Some(strings)
    }

    /// A list of scalars taken as text (`options`, status lists).
    pub fn texts(
        &mut self,
        cx: &mut Checker<'_>,
        name: &'static str,
    ) -> Option<Vec<(String, &'n Node)>> {
        let node = self.get(name)?;
        let items = cx.list(node, &format!("{name:?}"))?;
        let texts: Vec<_> = items
            .iter()
            .filter_map(|item| Some((cx.text(item, &format!("an entry of {name:?}"))?, item)))
            .collect();
        if texts.len() == items.len() {
            self.insert(
                name,
                Json::Array(texts.iter().map(|(s, _)| Json::String(s.clone())).collect()),
            );
        }
        Some(texts)
    }

    /// A mapping of names to scalars taken as text (`env`, `headers`).
    pub fn text_map(&mut self, cx: &mut Checker<'_>, name: &'static str) -> Option<()> {
        let node = self.get(name)?;
        let Value::Map(entries) = &node.value else {
            cx.error(
                node.span.start,
                format!(
                    "{name:?} must be a mapping of names to values, not {}",
                    node.describe()
                ),
            );
            return None;
        };
        let mut out = Map::new();
        for (key, value) in entries {
            let key_text = key.scalar_text(cx.source).unwrap_or_default();
            // An empty value is an empty string here: `FOO:` in env sets FOO to "".
            let text = if matches!(value.value, Value::Null) {
                Some(String::new())
            } else {
                cx.text(value, &format!("{name:?} value {key_text:?}"))
            };
            if let Some(text) = text {
                out.insert(key_text, Json::String(text));
            }
        }
        self.insert(name, Json::Object(out));
        Some(())
    }

    /// Any value, copied as JSON (a webhook body).
    pub fn any(&mut self, cx: &mut Checker<'_>, name: &'static str) -> Option<&'n Node> {
        let node = self.get(name)?;
        match node.to_json() {
            Ok(json) => self.insert(name, json),
            Err(at) => cx.error(at, "this number (an infinity or nan) has no json form"),
        }
        Some(node)
    }

    /// Reports the keys no getter asked for and returns the JSON read. With `check_unknown`
    /// false (a stage whose type is unknown) only the JSON is returned.
    pub fn finish(self, cx: &mut Checker<'_>, check_unknown: bool) -> Json {
        #[cfg(test)]
        field_coverage::note(
            &self.what,
            &self.known,
            self.entries
                .iter()
                .map(|(key, _)| key.scalar_text(cx.source).unwrap_or_default().to_string()),
        );
        if check_unknown {
            for (key, _) in self.entries {
                let name = key.scalar_text(cx.source).unwrap_or_default();
                let name = name.as_str();
                if !self.known.contains(&name) {
                    let hint = match did_you_mean(name, &self.known) {
                        hint if !hint.is_empty() => hint,
                        _ => format!("; expected one of: {}", self.known.join(", ")),
                    };
                    cx.error(
                        key.span.start,
                        format!("unknown field {name:?} in {}{hint}", self.what),
                    );
                }
            }
        }
        Json::Object(self.out)
    }
}

/// `, did you mean "steps"?` when one of `names` is close to `name`, else nothing.
pub(crate) fn did_you_mean(name: &str, names: &[&str]) -> String {
    let lower = name.to_lowercase();
    names
        .iter()
        .map(|candidate| (distance(&lower, &candidate.to_lowercase()), candidate))
        .filter(|(d, candidate)| *d <= (candidate.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| format!(", did you mean {candidate:?}?"))
        .unwrap_or_default()
}

/// Edit distance counting a swap of two neighbours as one edit ("optimal string alignment"),
/// so that `wiat` is one edit from `wait`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Stage ids and parameter names are read in expressions as `stages.ID` and
/// `parameters.NAME`, so they must be CEL identifiers.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reports `name` (a stage id or a parameter name, read in expressions as `ROOT.name`) when it
/// is not an identifier.
pub(crate) fn check_identifier(
    cx: &mut Checker<'_>,
    node: &Node,
    name: &str,
    what: &str,
    root: &str,
) {
    if is_identifier(name) {
        return;
    }
    let minus = if name.contains('-') {
        ", where CEL would take each - as a minus"
    } else {
        ""
    };
    cx.error(
        node.span.start,
        format!(
            "{what} {name:?} is not an identifier: use letters, digits and _, not starting with a digit \
             (expressions read it as {root}.{name}{minus})"
        ),
    );
}

/// Which fields a parse used, per kind of mapping (a kind is the set of
/// fields its reader knows), so that a test can require the example file to
/// show every field.
#[cfg(test)]
pub(crate) mod field_coverage {
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};

    /// Per kind of mapping (its name in messages up to the first quote or
    /// number: `stage`, `step`, `load balancer`, `trigger`): the fields its
    /// readers know, and the fields some mapping of that kind used. A field
    /// that several stage types share counts once.
    pub type Coverage = BTreeMap<String, (BTreeSet<&'static str>, BTreeSet<String>)>;

    thread_local! {
        static SEEN: RefCell<Option<Coverage>> = const { RefCell::new(None) };
    }

    pub fn note(what: &str, known: &[&'static str], present: impl Iterator<Item = String>) {
        SEEN.with(|seen| {
            if let Some(seen) = seen.borrow_mut().as_mut() {
                let kind = what
                    .split(|c: char| c == '"' || c.is_ascii_digit())
                    .next()
                    .unwrap_or(what)
                    .trim();
                let entry = seen.entry(kind.to_owned()).or_default();
                entry.0.extend(known);
                entry.1.extend(present);
            }
        });
    }

    /// Runs `parse` and returns what it used.
    pub fn record(parse: impl FnOnce()) -> Coverage {
        SEEN.with(|seen| *seen.borrow_mut() = Some(Coverage::new()));
        parse();
        SEEN.with(|seen| seen.borrow_mut().take())
            .unwrap_or_default()
    }
}
