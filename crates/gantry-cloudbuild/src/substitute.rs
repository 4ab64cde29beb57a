//! Cloud Build's substitutions: `$NAME` and `${NAME}`, where NAME matches
//! `[A-Z_][A-Z0-9_]*`, for the built-ins and user `_NAME`s; `$$` for a
//! literal `$`. Anything else after a `$` (`$dir`, `${version}`, `$1`,
//! `${X:-y}`) is the shell's and passes through untouched. Strictly (the
//! default, `MUST_MATCH`), an upper-case name that is not defined and a user
//! substitution that nothing uses are errors; with `ALLOW_LOOSE` the first
//! becomes empty and the second is fine.
//!
//! User substitutions may refer to others in their values
//! (`_IMAGE: gcr.io/$PROJECT_ID/app:${_TAG}`), as triggers always allow:
//! values are expanded once, up front, and a reference counts as a use.
//! With `options.dynamicSubstitutions`, `${NAME…}` also takes the bash
//! parameter expansions Cloud Build evaluates (`${COMMIT_SHA:0:7}`,
//! `${_ENV,,}`, `${_REF##*/}`, `${_X//-/_}`, `${_X:-default}`).

use std::collections::{BTreeMap, BTreeSet};

use crate::parse::is_user_substitution;

/// The built-in substitutions, as Cloud Build names them.
pub fn builtin_names() -> &'static [&'static str] {
    &[
        "PROJECT_ID",
        "PROJECT_NUMBER",
        "BUILD_ID",
        "LOCATION",
        "COMMIT_SHA",
        "SHORT_SHA",
        "REVISION_ID",
        "BRANCH_NAME",
        "TAG_NAME",
        "REF_NAME",
        "REPO_NAME",
        "REPO_FULL_NAME",
        "TRIGGER_NAME",
        "TRIGGER_BUILD_CONFIG_PATH",
        "SERVICE_ACCOUNT_EMAIL",
        "SERVICE_ACCOUNT",
    ]
}

/// The built-ins `gcloud builds submit --substitutions` lets a user set:
/// those a trigger would otherwise take from the source.
pub fn overridable_builtins() -> &'static [&'static str] {
    &[
        "COMMIT_SHA",
        "REVISION_ID",
        "SHORT_SHA",
        "REPO_NAME",
        "BRANCH_NAME",
        "TAG_NAME",
    ]
}

/// How a build's substitutions behave (`options` of the file).
#[derive(Clone, Copy, Debug, Default)]
pub struct SubstitutionConfig {
    /// `substitutionOption: ALLOW_LOOSE`.
    pub allow_loose: bool,
    /// `dynamicSubstitutions: true`: bash parameter expansions.
    pub dynamic: bool,
}

/// The values in force for one build, and what the build used of them.
#[derive(Clone, Debug)]
pub struct Substitutions {
    values: BTreeMap<String, String>,
    allow_loose: bool,
    dynamic: bool,
    used: BTreeSet<String>,
    errors: Vec<String>,
}

impl Substitutions {
    /// `values` holds the built-ins and the user substitutions (those of the
    /// file overridden by the command line). References between user
    /// substitutions are expanded here; their problems are reported by
    /// [`Substitutions::finish`].
    pub fn new(values: BTreeMap<String, String>, allow_loose: bool) -> Substitutions {
        Substitutions::with_config(
            values,
            SubstitutionConfig {
                allow_loose,
                dynamic: false,
            },
        )
    }

    pub fn with_config(
        values: BTreeMap<String, String>,
        config: SubstitutionConfig,
    ) -> Substitutions {
        let mut subs = Substitutions {
            values,
            allow_loose: config.allow_loose,
            dynamic: config.dynamic,
            used: BTreeSet::new(),
            errors: Vec::new(),
        };
        let mut expanded = BTreeMap::new();
        let users: Vec<String> = subs
            .values
            .keys()
            .filter(|k| is_user_substitution(k))
            .cloned()
            .collect();
        for name in users {
            subs.expand_value(&name, &mut expanded, &mut Vec::new());
        }
        subs.values.extend(expanded);
        subs
    }

    /// The values, user substitutions expanded.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// Counts every substitution as used: `automapSubstitutions` hands them
    /// all to a step's environment, where any of them may be read.
    pub fn use_all(&mut self) {
        self.used.extend(self.values.keys().cloned());
    }

    /// Every problem found, including the user substitutions never used.
    pub fn finish(mut self) -> Result<(), Vec<String>> {
        if !self.allow_loose {
            for name in self.values.keys() {
                if is_user_substitution(name) && !self.used.contains(name) {
                    self.errors.push(format!(
                        "substitution {name:?} is not used anywhere in the build; remove it or set options.substitutionOption: ALLOW_LOOSE"
                    ));
                }
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            self.errors.dedup();
            Err(self.errors)
        }
    }

    /// The value of user substitution `name` with the substitutions it
    /// refers to applied; `stack` holds the names being expanded, to catch
    /// a value that refers back to itself.
    fn expand_value(
        &mut self,
        name: &str,
        expanded: &mut BTreeMap<String, String>,
        stack: &mut Vec<String>,
    ) -> String {
        if let Some(done) = expanded.get(name) {
            return done.clone();
        }
        let raw = self.values.get(name).cloned().unwrap_or_default();
        if stack.iter().any(|n| n == name) {
            stack.push(name.to_owned());
            self.errors.push(format!(
                "substitutions: {} refer to each other; Cloud Build cannot expand them",
                stack.join(" → ")
            ));
            stack.pop();
            return raw;
        }
        stack.push(name.to_owned());
        let place = format!("substitutions {name}");
        let mut out = String::with_capacity(raw.len());
        for token in tokens(&raw, self.dynamic) {
            match token {
                Token::Text(text) => out.push_str(text),
                Token::Dollar => out.push('$'),
                Token::Name(reference, operation) => {
                    let value = if !self.values.contains_key(reference) {
                        self.missing(reference, &place);
                        continue;
                    } else if is_user_substitution(reference) {
                        self.expand_value(reference, expanded, stack)
                    } else {
                        self.values[reference].clone()
                    };
                    self.used.insert(reference.to_owned());
                    out.push_str(&self.operate(reference, &value, operation, &place));
                }
            }
        }
        stack.pop();
        expanded.insert(name.to_owned(), out.clone());
        out
    }

    /// `value` of `name` after a bash parameter expansion, if any.
    fn operate(&mut self, name: &str, value: &str, operation: &str, place: &str) -> String {
        if operation.is_empty() {
            return value.to_owned();
        }
        match expand(value, operation) {
            Ok(result) => result,
            Err(why) => {
                self.errors
                    .push(format!("{place}: ${{{name}{operation}}}: {why}"));
                value.to_owned()
            }
        }
    }

    fn missing(&mut self, name: &str, place: &str) {
        if self.allow_loose {
            return;
        }
        self.errors.push(if name.starts_with('_') {
            format!(
                "{place}: substitution ${name} is not defined; define it in \"substitutions\" or with --substitutions, or write $$ for a literal $"
            )
        } else {
            format!(
                "{place}: ${name} is not a valid built-in substitution; write $${name} to pass it to the shell"
            )
        });
    }
}

/// Applies the substitutions to `text`; `place` says where it is in
/// messages (`step 2 args`).
pub fn substitute(subs: &mut Substitutions, text: &str, place: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for token in tokens(text, subs.dynamic) {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Dollar => out.push('$'),
            Token::Name(name, operation) => match subs.values.get(name).cloned() {
                Some(value) => {
                    subs.used.insert(name.to_owned());
                    out.push_str(&subs.operate(name, &value, operation, place));
                }
                None => subs.missing(name, place),
            },
        }
    }
    out
}

enum Token<'a> {
    Text(&'a str),
    /// `$$`.
    Dollar,
    /// `$NAME` or `${NAME}`, and the bash expansion after the name in
    /// `${NAME:0:7}` (empty without one).
    Name(&'a str, &'a str),
}

/// Splits `text` into what stays and what is substituted; `dynamic` reads
/// bash expansions after a name too.
fn tokens(text: &str, dynamic: bool) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Token::Text(&rest[..at]));
            out.push(Token::Dollar);
            rest = tail;
            continue;
        }
        let found = if let Some(braced) = after.strip_prefix('{') {
            braced.find('}').and_then(|end| {
                let inside = &braced[..end];
                let split = inside
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(inside.len());
                let (name, operation) = inside.split_at(split);
                let is_operation = operation.is_empty()
                    || (dynamic && operation.starts_with([':', ',', '^', '#', '%', '/']));
                (is_substitution_name(name) && is_operation)
                    .then(|| (name, operation, &braced[end + 1..]))
            })
        } else {
            // The whole identifier decides: `$dir` and `$Path` are the
            // shell's, not a substitution named `P` followed by `ath`.
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            Some((&after[..end], "", &after[end..]))
                .filter(|(name, _, _)| is_substitution_name(name))
        };
        match found {
            Some((name, operation, tail)) => {
                out.push(Token::Text(&rest[..at]));
                out.push(Token::Name(name, operation));
                rest = tail;
            }
            None => {
                out.push(Token::Text(&rest[..=at]));
                rest = after;
            }
        }
    }
    out.push(Token::Text(rest));
    out
}

/// `[A-Z_][A-Z0-9_]*`: what Cloud Build substitutes.
fn is_substitution_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A bash parameter expansion `operation` (what follows the name in
/// `${NAME…}`) applied to `value`.
fn expand(value: &str, operation: &str) -> Result<String, String> {
    let chars: Vec<char> = value.chars().collect();
    if let Some(default) = operation.strip_prefix(":-") {
        return Ok(if value.is_empty() { default } else { value }.to_owned());
    }
    if let Some(alternative) = operation.strip_prefix(":+") {
        return Ok(if value.is_empty() { "" } else { alternative }.to_owned());
    }
    match operation {
        ",," => return Ok(value.to_lowercase()),
        "^^" => return Ok(value.to_uppercase()),
        "," | "^" => {
            let mut out = String::with_capacity(value.len());
            let mut rest = value.chars();
            if let Some(first) = rest.next() {
                if operation == "," {
                    out.extend(first.to_lowercase());
                } else {
                    out.extend(first.to_uppercase());
                }
            }
            out.push_str(rest.as_str());
            return Ok(out);
        }
        _ => {}
    }
    if let Some(range) = operation.strip_prefix(':') {
        let (offset, length) = match range.split_once(':') {
            Some((offset, length)) => (offset, Some(length)),
            None => (range, None),
        };
        let number = |text: &str| {
            let text = text.trim().trim_start_matches('(').trim_end_matches(')');
            text.parse::<i64>()
                .map_err(|_| format!("{text:?} is not a number"))
        };
        let len = chars.len() as i64;
        let mut start = number(offset)?;
        if start < 0 {
            start = (len + start).max(0);
        }
        let start = start.min(len);
        let end = match length.map(number).transpose()? {
            None => len,
            Some(n) if n < 0 => (len + n).max(start),
            Some(n) => (start + n).min(len),
        };
        return Ok(chars[start as usize..end as usize].iter().collect());
    }
    if let Some(replace) = operation.strip_prefix('/') {
        let (all, replace) = match replace.strip_prefix('/') {
            Some(rest) => (true, rest),
            None => (false, replace),
        };
        let (pattern, with) = replace.split_once('/').unwrap_or((replace, ""));
        if pattern.contains(['*', '?', '[']) {
            return Err("replacing a pattern with wildcards is not supported by gantry build; use a literal pattern".to_owned());
        }
        if pattern.is_empty() {
            return Ok(value.to_owned());
        }
        return Ok(if all {
            value.replace(pattern, with)
        } else {
            value.replacen(pattern, with, 1)
        });
    }
    let (pattern, prefix, longest) = if let Some(p) = operation.strip_prefix("##") {
        (p, true, true)
    } else if let Some(p) = operation.strip_prefix('#') {
        (p, true, false)
    } else if let Some(p) = operation.strip_prefix("%%") {
        (p, false, true)
    } else if let Some(p) = operation.strip_prefix('%') {
        (p, false, false)
    } else {
        return Err("this bash expansion is not supported by gantry build".to_owned());
    };
    if pattern.contains('[') {
        return Err("bracket patterns are not supported by gantry build".to_owned());
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let cuts: Vec<usize> = if longest {
        (0..=chars.len()).rev().collect()
    } else {
        (0..=chars.len()).collect()
    };
    for cut in cuts {
        let (matched, kept) = if prefix {
            (&chars[..cut], &chars[cut..])
        } else {
            (&chars[chars.len() - cut..], &chars[..chars.len() - cut])
        };
        if glob(&pattern, matched) {
            return Ok(kept.iter().collect());
        }
    }
    Ok(value.to_owned())
}

/// Whether `text` matches the shell pattern `pattern` (`*` and `?`).
fn glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}
