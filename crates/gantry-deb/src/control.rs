//! Control paragraphs (deb822): `Field: value` lines, continuation lines
//! starting with a space, paragraphs separated by blank lines. Field order
//! is kept, since Packages indexes and `dpkg-deb -I` show it.

use crate::DebError;

/// One paragraph: fields in their order, names compared without case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Control {
    fields: Vec<(String, String)>,
}

impl Control {
    pub fn new() -> Control {
        Control::default()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Sets a field, in place if present, else at the end. Values may span
    /// lines (each continuation line is written with a leading space).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .fields
            .iter_mut()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
        {
            Some((_, old)) => *old = value,
            None => self.fields.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.fields
            .retain(|(field, _)| !field.eq_ignore_ascii_case(name));
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The paragraph as text, ending with a newline (no blank line).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    pub fn write_to(&self, out: &mut String) {
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push(':');
            let mut lines = value.split('\n');
            if let Some(first) = lines.next()
                && !first.is_empty()
            {
                out.push(' ');
                out.push_str(first);
            }
            out.push('\n');
            for line in lines {
                out.push(' ');
                out.push_str(if line.is_empty() { "." } else { line });
                out.push('\n');
            }
        }
    }

    /// Checks that a value can be written into a paragraph unchanged.
    pub fn check_value(name: &str, value: &str) -> Result<(), DebError> {
        if value.chars().any(|c| c.is_control() && c != '\n') {
            return Err(DebError::InvalidField {
                field: name.to_owned(),
                reason: "must not contain control characters",
            });
        }
        if value.starts_with(char::is_whitespace) {
            return Err(DebError::InvalidField {
                field: name.to_owned(),
                reason: "must not start with whitespace",
            });
        }
        Ok(())
    }
}

/// Parses every paragraph of `text`; `what` names the source in errors.
pub fn parse_paragraphs(text: &str) -> Result<Vec<Control>, String> {
    let mut paragraphs = Vec::new();
    let mut current = Control::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.fields.last_mut() else {
                return Err(format!(
                    "line {}: continuation line without a field",
                    number + 1
                ));
            };
            value.push('\n');
            value.push_str(&line[1..]);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("line {}: expected 'Field: value'", number + 1));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("line {}: invalid field name {name:?}", number + 1));
        }
        current
            .fields
            .push((name.to_owned(), value.trim().to_owned()));
    }
    if !current.fields.is_empty() {
        paragraphs.push(current);
    }
    Ok(paragraphs)
}
