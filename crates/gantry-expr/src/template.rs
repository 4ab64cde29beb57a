use crate::context::Context;
use crate::error::ExprError;
use crate::expression::Expression;
use crate::references::Reference;
use crate::render::stringify;
use crate::stack::on_big_stack;

/// A string with `${{ expr }}` parts, as written in any string field of a pipeline.
///
/// There is no escape for a literal `${{`: write `${{ '${{' }}`. A `$` followed by anything else
/// (`${VAR}`, `$VAR`, `$$`) is plain text.
#[derive(Clone, Debug)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Expression(Expression),
}

impl Template {
    /// Splits `text` into literal text and expressions, and parses each expression. The error's
    /// offset is the byte in `text` where the problem is.
    pub fn parse(text: &str) -> Result<Template, ExprError> {
        if !text.contains("${{") {
            // Most strings hold no expression: no need for the CEL threads.
            return Template::parse_here(text);
        }
        let text = text.to_owned();
        on_big_stack(move || Template::parse_here(&text))
            .unwrap_or_else(|failure| Err(ExprError::syntax(0, failure.message())))
    }

    fn parse_here(text: &str) -> Result<Template, ExprError> {
        let mut parts = Vec::new();
        let mut text_start = 0;
        while let Some(found) = text[text_start..].find("${{") {
            let open = text_start + found;
            let inner = open + "${{".len();
            let close = find_close(text, inner)
                .ok_or_else(|| ExprError::syntax(open, "unterminated `${{`: no `}}` closes it"))?;
            if open > text_start {
                parts.push(Part::Text(text[text_start..open].to_owned()));
            }
            parts.push(Part::Expression(Expression::compile(
                &text[inner..close],
                inner,
            )?));
            text_start = close + "}}".len();
        }
        if text_start < text.len() {
            parts.push(Part::Text(text[text_start..].to_owned()));
        }
        Ok(Template { parts })
    }

    /// True when the template holds no expression: rendering it gives it back unchanged.
    pub fn is_literal(&self) -> bool {
        self.expressions().next().is_none()
    }

    /// The expressions, in order.
    pub fn expressions(&self) -> impl Iterator<Item = &Expression> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expression(expression) => Some(expression),
            Part::Text(_) => None,
        })
    }

    /// The references of every expression, offsets counted from the template's start.
    pub fn references(&self) -> Vec<Reference> {
        self.expressions()
            .flat_map(Expression::references)
            .collect()
    }

    /// Evaluates every expression and concatenates: strings as they are, numbers plainly, other
    /// values as JSON.
    pub fn render(&self, ctx: &Context) -> Result<String, ExprError> {
        if self.is_literal() {
            return self.render_here(ctx);
        }
        let (template, ctx) = (self.clone(), ctx.clone());
        on_big_stack(move || template.render_here(&ctx))
            .unwrap_or_else(|failure| Err(ExprError::eval("", failure.message())))
    }

    fn render_here(&self, ctx: &Context) -> Result<String, ExprError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expression(expression) => out.push_str(&stringify(&expression.eval(ctx)?)),
            }
        }
        Ok(out)
    }

    /// The expression when the template is exactly one `${{ … }}`; with `allow_blanks`,
    /// whitespace around it is allowed too.
    pub(crate) fn sole_expression(&self, allow_blanks: bool) -> Option<&Expression> {
        let mut sole = None;
        for part in &self.parts {
            match part {
                Part::Text(text) if allow_blanks && text.trim().is_empty() => {}
                Part::Text(_) => return None,
                Part::Expression(_) if sole.is_some() => return None,
                Part::Expression(expression) => sole = Some(expression),
            }
        }
        sole
    }
}

/// The byte where the `}}` closing an expression starts, skipping CEL string literals and
/// balanced braces so that `${{ {'a': '}}'} }}` closes at the last `}}`.
fn find_close(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut at = from;
    while at < bytes.len() {
        match bytes[at] {
            b'\'' | b'"' => at = skip_string(bytes, at)?,
            b'{' => {
                depth += 1;
                at += 1;
            }
            b'}' if depth == 0 && bytes.get(at + 1) == Some(&b'}') => return Some(at),
            b'}' => {
                depth = depth.saturating_sub(1);
                at += 1;
            }
            _ => at += 1,
        }
    }
    None
}

/// The byte after the CEL string literal whose opening quote is at `start`: `'…'`, `"…"`,
/// their tripled forms, and raw strings (`r'…'`) where a backslash escapes nothing.
fn skip_string(bytes: &[u8], start: usize) -> Option<usize> {
    let quote = bytes[start];
    let raw = start > 0 && matches!(bytes[start - 1], b'r' | b'R');
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let delimiter_len = if triple { 3 } else { 1 };
    let mut at = start + delimiter_len;
    while at < bytes.len() {
        match bytes[at] {
            b'\\' if !raw => at += 2,
            byte if byte == quote => {
                if !triple {
                    return Some(at + 1);
                }
                if bytes.get(at + 1) == Some(&quote) && bytes.get(at + 2) == Some(&quote) {
                    return Some(at + 3);
                }
                at += 1;
            }
            _ => at += 1,
        }
    }
    None
}
