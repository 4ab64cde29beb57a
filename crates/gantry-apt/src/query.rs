//! Package queries as aptly writes them: `hello`, `hello (>= 1.2)`,
//! `hello {amd64}`, `$Architecture (= amd64)`, `Priority (required)`,
//! combined with `,` (and, binds tighter), `|` (or), `!` (not) and
//! parentheses.

use std::cmp::Ordering;

use gantry_deb::Version;

use crate::AptError;

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    /// A package name, optionally with a version relation and architecture.
    Package {
        name: String,
        relation: Option<(Relation, String)>,
        architecture: Option<String>,
    },
    /// `$Field (op value)` or `Field (value)` on a control field.
    Field {
        field: String,
        relation: Relation,
        value: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Equal,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

/// What a query is matched against.
pub struct Candidate<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    pub field: &'a dyn Fn(&str) -> Option<String>,
}

impl Query {
    pub fn parse(text: &str) -> Result<Query, AptError> {
        let mut parser = Parser {
            text,
            chars: text.char_indices().collect(),
            at: 0,
        };
        let query = parser.or()?;
        parser.skip_spaces();
        if parser.at < parser.chars.len() {
            return Err(parser.error("unexpected text"));
        }
        Ok(query)
    }

    pub fn matches(&self, package: &Candidate<'_>) -> bool {
        match self {
            Query::And(a, b) => a.matches(package) && b.matches(package),
            Query::Or(a, b) => a.matches(package) || b.matches(package),
            Query::Not(q) => !q.matches(package),
            Query::Package {
                name,
                relation,
                architecture,
            } => {
                name == package.name
                    && architecture
                        .as_ref()
                        .is_none_or(|a| a == package.architecture)
                    && relation
                        .as_ref()
                        .is_none_or(|(r, v)| version_holds(package.version, *r, v))
            }
            Query::Field {
                field,
                relation,
                value,
            } => {
                let actual = match field.as_str() {
                    "Architecture" => Some(package.architecture.to_owned()),
                    "Version" => Some(package.version.to_owned()),
                    "Package" | "Name" => Some(package.name.to_owned()),
                    other => (package.field)(other),
                };
                let Some(actual) = actual else { return false };
                if field == "Version" {
                    version_holds(&actual, *relation, value)
                } else {
                    match relation {
                        Relation::Equal => &actual == value,
                        Relation::Greater => actual.as_str() > value.as_str(),
                        Relation::GreaterOrEqual => actual.as_str() >= value.as_str(),
                        Relation::Less => actual.as_str() < value.as_str(),
                        Relation::LessOrEqual => actual.as_str() <= value.as_str(),
                    }
                }
            }
        }
    }
}

fn version_holds(actual: &str, relation: Relation, wanted: &str) -> bool {
    let (Ok(actual), Ok(wanted)) = (Version::parse(actual), Version::parse(wanted)) else {
        return false;
    };
    let order = actual.cmp(&wanted);
    match relation {
        Relation::Equal => order == Ordering::Equal,
        Relation::Greater => order == Ordering::Greater,
        Relation::GreaterOrEqual => order != Ordering::Less,
        Relation::Less => order == Ordering::Less,
        Relation::LessOrEqual => order != Ordering::Greater,
    }
}

struct Parser<'a> {
    text: &'a str,
    chars: Vec<(usize, char)>,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> AptError {
        let column = self.chars.get(self.at).map_or(self.text.len(), |c| c.0) + 1;
        AptError::Invalid(format!(
            "invalid query {:?}: {what} at column {column}",
            self.text
        ))
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|c| c.1)
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Query, AptError> {
        let mut query = self.and()?;
        while self.eat('|') {
            query = Query::Or(Box::new(query), Box::new(self.and()?));
        }
        Ok(query)
    }

    fn and(&mut self) -> Result<Query, AptError> {
        let mut query = self.unary()?;
        while self.eat(',') {
            query = Query::And(Box::new(query), Box::new(self.unary()?));
        }
        Ok(query)
    }

    fn unary(&mut self) -> Result<Query, AptError> {
        if self.eat('!') {
            return Ok(Query::Not(Box::new(self.unary()?)));
        }
        if self.eat('(') {
            let query = self.or()?;
            if !self.eat(')') {
                return Err(self.error("expected ')'"));
            }
            return Ok(query);
        }
        self.condition()
    }

    fn word(&mut self) -> String {
        self.skip_spaces();
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "(),|!{}".contains(c) {
                break;
            }
            word.push(c);
            self.at += 1;
        }
        word
    }

    fn condition(&mut self) -> Result<Query, AptError> {
        let word = self.word();
        if word.is_empty() {
            return Err(self.error("expected a package name or a field"));
        }
        let relation = if self.eat('(') {
            let relation = self.relation();
            let value = self.word();
            if value.is_empty() {
                return Err(self.error("expected a value"));
            }
            if !self.eat(')') {
                return Err(self.error("expected ')'"));
            }
            Some((relation, value))
        } else {
            None
        };
        let architecture = if self.eat('{') {
            let arch = self.word();
            if !self.eat('}') {
                return Err(self.error("expected '}'"));
            }
            Some(arch)
        } else {
            None
        };
        let field = word.strip_prefix('$').map(str::to_owned).or_else(|| {
            word.starts_with(|c: char| c.is_ascii_uppercase())
                .then(|| word.clone())
        });
        match field {
            Some(field) => {
                let Some((relation, value)) = relation else {
                    return Err(self.error(&format!("field {field} needs a (value)")));
                };
                Ok(Query::Field {
                    field,
                    relation,
                    value,
                })
            }
            None => Ok(Query::Package {
                name: word,
                relation,
                architecture,
            }),
        }
    }

    fn relation(&mut self) -> Relation {
        self.skip_spaces();
        let rest: String = self.chars[self.at..].iter().take(2).map(|c| c.1).collect();
        let (relation, len) = match rest.as_str() {
            ">=" => (Relation::GreaterOrEqual, 2),
            "<=" => (Relation::LessOrEqual, 2),
            ">>" => (Relation::Greater, 2),
            "<<" => (Relation::Less, 2),
            _ if rest.starts_with('=') => (Relation::Equal, 1),
            _ if rest.starts_with('>') => (Relation::GreaterOrEqual, 1),
            _ if rest.starts_with('<') => (Relation::LessOrEqual, 1),
            _ => (Relation::Equal, 0),
        };
        self.at += len;
        relation
    }
}
