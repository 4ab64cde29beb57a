use std::fmt;
use std::sync::{Arc, LazyLock};

use crate::context::{Context, to_json};
use crate::error::ExprError;
use crate::references::{Reference, references};
use crate::stack::{MAX_EXPRESSION_LEN, on_big_stack};
use crate::template::Template;

/// One CEL expression: an `if:` condition, a precondition, or the inside of a `${{ … }}`.
#[derive(Clone)]
pub struct Expression {
    /// The CEL text, without `${{ }}`.
    source: String,
    /// Where `source` starts in the string it was parsed from; offsets in errors and
    /// references count from that string's start.
    offset: usize,
    program: Arc<cel::Program>,
}

/// The CEL environment every expression compiles and runs in: the standard library plus the
/// strings extension. Built once; compiled programs don't depend on it.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    // Registering a stock extension on a fresh standard environment cannot conflict; if a
    // future `cel` made it fail, expressions simply lose the extra string functions.
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

impl Expression {
    /// Parses a bare CEL expression (`parameters.env == 'prod'`) or one wrapped entirely in
    /// `${{ }}`, with only blanks around it.
    pub fn parse(text: &str) -> Result<Expression, ExprError> {
        if !text.contains("${{") {
            return Expression::compile(text, 0);
        }
        let template = Template::parse(text)?;
        match template.sole_expression(true) {
            Some(expression) => Ok(expression.clone()),
            None => Err(ExprError::syntax(
                text.find("${{").unwrap_or(0),
                "a condition is either bare CEL or one `${{ … }}` holding all of it",
            )),
        }
    }

    /// Compiles `source`, found at byte `offset` of the string being parsed.
    pub(crate) fn compile(source: &str, offset: usize) -> Result<Expression, ExprError> {
        if source.trim().is_empty() {
            return Err(ExprError::syntax(offset, "empty expression"));
        }
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(ExprError::syntax(
                offset,
                format!("expression is longer than {MAX_EXPRESSION_LEN} bytes"),
            ));
        }
        let owned = source.to_owned();
        match on_big_stack(move || ENV.compile(&owned)) {
            Ok(Ok(program)) => Ok(Expression {
                source: source.to_owned(),
                offset,
                program: Arc::new(program),
            }),
            Ok(Err(errors)) => {
                let (at, message) = match errors.errors.first() {
                    // The position that comes with this one is the parser's depth, not a place.
                    Some(error) if error.msg.contains("Recursion limit") => {
                        (0, "expression nests too deeply".to_owned())
                    }
                    Some(error) => (byte_at(source, error.pos), tidy_syntax_message(&error.msg)),
                    None => (0, "invalid expression".to_owned()),
                };
                Err(ExprError::syntax(offset + at, message))
            }
            Err(failure) => Err(ExprError::syntax(offset, failure.message())),
        }
    }

    /// The CEL text, without `${{ }}` or surrounding blanks.
    pub fn source(&self) -> &str {
        self.source.trim()
    }

    /// Evaluates the expression and returns its value as JSON.
    pub fn eval(&self, ctx: &Context) -> Result<serde_json::Value, ExprError> {
        let value = self.eval_cel(ctx)?;
        to_json(&value).map_err(|message| ExprError::eval(self.source(), message))
    }

    /// Evaluates a condition; a result that is not a bool is an error naming its type.
    pub fn eval_bool(&self, ctx: &Context) -> Result<bool, ExprError> {
        match self.eval_cel(ctx)? {
            cel::Value::Bool(value) => Ok(value),
            other => Err(ExprError::eval(
                self.source(),
                format!(
                    "a condition must be a bool, this one is {}",
                    other.type_of()
                ),
            )),
        }
    }

    /// Every chain of field and index accesses rooted at a top-level name, with offsets
    /// counted from the start of the string the expression was parsed from.
    pub fn references(&self) -> Vec<Reference> {
        references(
            self.program.expression(),
            self.program.source_info(),
            &self.source,
        )
        .into_iter()
        .map(|reference| Reference {
            offset: reference.offset + self.offset,
            ..reference
        })
        .collect()
    }

    fn eval_cel(&self, ctx: &Context) -> Result<cel::Value, ExprError> {
        let (program, ctx) = (Arc::clone(&self.program), ctx.clone());
        let result = on_big_stack(move || {
            let cel_ctx = ctx.to_cel(Arc::clone(&ENV));
            program
                .execute(&cel_ctx)
                .map_err(|error| tidy_eval_message(&error))
        });
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(ExprError::eval(self.source(), message)),
            Err(failure) => Err(ExprError::eval(self.source(), failure.message())),
        }
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expression")
            .field("source", &self.source)
            .field("offset", &self.offset)
            .finish()
    }
}

/// The byte offset in `source` of the parser's (1-based line, 1-based character column).
fn byte_at(source: &str, (line, column): (isize, isize)) -> usize {
    let line = usize::try_from(line.max(1) - 1).unwrap_or(0);
    let column = usize::try_from(column.max(1) - 1).unwrap_or(0);
    let mut line_start = 0;
    for (index, text) in source.split_inclusive('\n').enumerate() {
        if index == line {
            return line_start
                + text
                    .char_indices()
                    .nth(column)
                    .map_or(text.len(), |(byte, _)| byte);
        }
        line_start += text.len();
    }
    source.len()
}

/// ANTLR's messages list every token the grammar would have accepted; a person needs to know
/// what was wrong, not the grammar.
fn tidy_syntax_message(message: &str) -> String {
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    if let Some(rest) = message.strip_prefix("token recognition error at: ") {
        let text = rest.trim_matches('\'').trim();
        return format!("unexpected character '{text}'");
    }
    if let Some(rest) = message.strip_prefix("missing ") {
        let expected = rest.split(" at ").next().unwrap_or(rest);
        return format!("missing {expected}");
    }
    if message.starts_with("no viable alternative at input ") {
        return "incomplete or malformed expression".to_owned();
    }
    for prefix in ["mismatched input ", "extraneous input "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let token = rest.split(" expecting").next().unwrap_or(rest);
            if token == "'<EOF>'" {
                return "unexpected end of expression".to_owned();
            }
            return format!("unexpected {token}");
        }
    }
    lowercase_first(message)
}

fn tidy_eval_message(error: &cel::ExecutionError) -> String {
    match error {
        cel::ExecutionError::NoSuchKey(key) => format!("no such key {key:?}"),
        cel::ExecutionError::UndeclaredReference(name) => format!("unknown name {name:?}"),
        other => lowercase_first(&other.to_string()),
    }
}

pub(crate) fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
