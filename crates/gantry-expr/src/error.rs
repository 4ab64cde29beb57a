/// What went wrong parsing or evaluating a template or an expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The text is not a valid template or expression. `offset` is the byte in the parsed
    /// string where the problem is, so that a caller can point at the exact character.
    #[error("{message}")]
    Syntax { offset: usize, message: String },
    /// The expression parsed but could not be evaluated (a missing key, a wrong type, …).
    #[error("`{expression}`: {message}")]
    Eval { expression: String, message: String },
}

impl ExprError {
    /// The byte offset of a syntax error in the parsed string; `None` for evaluation errors.
    pub fn offset(&self) -> Option<usize> {
        match self {
            ExprError::Syntax { offset, .. } => Some(*offset),
            ExprError::Eval { .. } => None,
        }
    }

    /// The message without the expression it concerns.
    pub fn message(&self) -> &str {
        match self {
            ExprError::Syntax { message, .. } | ExprError::Eval { message, .. } => message,
        }
    }

    pub(crate) fn syntax(offset: usize, message: impl Into<String>) -> ExprError {
        ExprError::Syntax {
            offset,
            message: message.into(),
        }
    }

    pub(crate) fn eval(expression: &str, message: impl Into<String>) -> ExprError {
        ExprError::Eval {
            expression: expression.to_owned(),
            message: message.into(),
        }
    }
}
