//! Cloud Build's substitutions: `$NAME` and `${NAME}` for the built-ins and
//! user `_NAME`s, `$$` for a literal `$`. Strictly (the default,
//! `MUST_MATCH`), a name that is not defined and a user substitution that
//! nothing uses are errors; with `ALLOW_LOOSE` the first becomes empty and
//! the second is fine.

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

/// The values in force for one build, and what the build used of them.
#[derive(Clone, Debug)]
pub struct Substitutions {
    values: BTreeMap<String, String>,
    allow_loose: bool,
    used: BTreeSet<String>,
    errors: Vec<String>,
}

impl Substitutions {
    /// `values` holds the built-ins and the user substitutions (those of the
    /// file overridden by the command line).
    pub fn new(values: BTreeMap<String, String>, allow_loose: bool) -> Substitutions {
        Substitutions {
            values,
            allow_loose,
            used: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
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
}

/// Applies the substitutions to `text`; `place` says where it is in
/// messages (`step 2 args`).
pub fn substitute(subs: &mut Substitutions, text: &str, place: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if is_name(&braced[..end]) => (&braced[..end], &braced[end + 1..]),
                _ => ("", after),
            }
        } else {
            let end = after
                .char_indices()
                .find(|(i, c)| {
                    !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(i, _)| i);
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match subs.values.get(name) {
            Some(value) => {
                out.push_str(value);
                subs.used.insert(name.to_owned());
            }
            None if subs.allow_loose => {}
            None if name.starts_with('_') => subs.errors.push(format!(
                "{place}: substitution ${name} is not defined; define it in \"substitutions\" or with --substitutions, or write $$ for a literal $"
            )),
            None => subs.errors.push(format!(
                "{place}: ${name} is not a valid built-in substitution; write $${name} to pass it to the shell"
            )),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
