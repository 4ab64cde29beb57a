//! Where things are written in a Cloud Build file, for messages: the line of
//! a top-level key, of a key inside a top-level block (`options:`), and of
//! a key inside the Nth step. The parsed tree has no positions, so this
//! reads the text's block layout; a file written in flow style or JSON gets
//! the first line naming the key, or none.

use std::ops::Range;

/// What a key is looked up in.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope<'a> {
    /// Keys at the top of the file.
    Top,
    /// Keys under a top-level key (`options`, `availableSecrets`).
    Block(&'a str),
    /// Keys of the step at this index.
    Step(usize),
}

pub(crate) struct Locator<'a> {
    lines: Vec<&'a str>,
    steps: Vec<Range<usize>>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str) -> Locator<'a> {
        let lines: Vec<&str> = text.lines().collect();
        let steps = match block(&lines, "steps") {
            Some(range) => items(&lines, range),
            None => Vec::new(),
        };
        Locator { lines, steps }
    }

    /// The 1-based line where step `index` starts.
    pub(crate) fn step(&self, index: usize) -> Option<usize> {
        self.steps.get(index).map(|r| r.start + 1)
    }

    /// The 1-based line where `key:` (or its snake_case spelling) is
    /// written in `scope`; the first such line anywhere when the layout is
    /// not the usual one.
    pub(crate) fn key(&self, scope: Scope, key: &str) -> Option<usize> {
        let range = match scope {
            Scope::Top => 0..self.lines.len(),
            Scope::Block(name) => block(&self.lines, name).unwrap_or(0..self.lines.len()),
            Scope::Step(index) => self
                .steps
                .get(index)
                .cloned()
                .unwrap_or(0..self.lines.len()),
        };
        let top_only = matches!(scope, Scope::Top);
        let snake = snake_case(key);
        let find = |range: Range<usize>| {
            range
                .into_iter()
                .find(|&i| {
                    let line = self.lines[i];
                    (!top_only || indent(line) == 0)
                        && (names_key(line, key) || names_key(line, &snake))
                })
                .map(|i| i + 1)
        };
        find(range).or_else(|| find(0..self.lines.len()))
    }
}

/// The lines of top-level key `name`'s block, after its own line.
fn block(lines: &[&str], name: &str) -> Option<Range<usize>> {
    let snake = snake_case(name);
    let start = lines
        .iter()
        .position(|line| indent(line) == 0 && (names_key(line, name) || names_key(line, &snake)))?;
    let end = (start + 1..lines.len())
        .find(|&i| {
            let line = lines[i];
            indent(line) == 0 && !is_blank(line) && !line.starts_with('-')
        })
        .unwrap_or(lines.len());
    Some(start..end)
}

/// The line ranges of a block list's items.
fn items(lines: &[&str], range: Range<usize>) -> Vec<Range<usize>> {
    let mut starts = Vec::new();
    let mut item_indent = None;
    for (i, line) in lines
        .iter()
        .enumerate()
        .take(range.end)
        .skip(range.start + 1)
    {
        let trimmed = line.trim_start();
        if !(trimmed == "-" || trimmed.starts_with("- ")) {
            continue;
        }
        match item_indent {
            None => {
                item_indent = Some(indent(line));
                starts.push(i);
            }
            Some(at) if at == indent(line) => starts.push(i),
            Some(_) => {}
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| start..starts.get(n + 1).copied().unwrap_or(range.end))
        .collect()
}

/// Whether `line` is `key:`, `- key:` or a quoted spelling of them.
fn names_key(line: &str, key: &str) -> bool {
    let line = line.trim_start().trim_start_matches("- ").trim_start();
    line.strip_prefix(key)
        .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
        .or_else(|| line.strip_prefix(&format!("'{key}'")))
        .is_some_and(|rest| rest.trim_start().starts_with(':'))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_blank(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// `machineType` → `machine_type`.
pub(crate) fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `machine_type` → `machineType`, as `gcloud` converts every key of a
/// build file before reading it.
pub(crate) fn camel_case(snake: &str) -> String {
    if !snake.contains('_') {
        return snake.to_owned();
    }
    let leading = snake.len() - snake.trim_start_matches('_').len();
    let mut parts = snake[leading..].split('_');
    let mut out = "_".repeat(leading);
    out.push_str(parts.next().unwrap_or_default());
    for part in parts {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.push_str(&chars.as_str().to_ascii_lowercase());
        }
    }
    out
}
