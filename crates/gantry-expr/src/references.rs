use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};

/// A chain of field and index accesses rooted at a top-level name, as written in an expression:
/// `stages.build.outputs.version` is `["stages", "build", "outputs", "version"]`, and
/// `parameters['env']` is `["parameters", "env"]`. A chain stops at the first index that is not
/// a literal: `parameters[name].x` is `["parameters"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub path: Vec<String>,
    /// The byte where the root name starts, in the string the expression was parsed from.
    pub offset: usize,
}

/// Names that CEL uses as function namespaces (`strings.quote(…)`, `optional.of(…)`); a call on
/// one of them is not a read of a variable.
const NAMESPACES: &[&str] = &["strings", "optional"];

pub(crate) fn references(root: &IdedExpr, info: &SourceInfo, source: &str) -> Vec<Reference> {
    let mut walker = Walker {
        info,
        source,
        bound: Vec::new(),
        found: Vec::new(),
    };
    walker.walk(root);
    walker.found
}

struct Walker<'a> {
    info: &'a SourceInfo,
    source: &'a str,
    /// Variables bound by enclosing comprehensions (`list.map(x, …)`), innermost last.
    bound: Vec<String>,
    found: Vec<Reference>,
}

impl Walker<'_> {
    fn walk(&mut self, node: &IdedExpr) {
        if let Some((root, path)) = chain(node) {
            if !self.bound.iter().any(|name| *name == path[0]) {
                let offset = self.offset_of(root);
                self.found.push(Reference { path, offset });
            }
            return;
        }
        match &node.expr {
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
            Expr::Select(select) => self.walk(&select.operand),
            Expr::Call(call) => {
                match call.target.as_deref() {
                    Some(IdedExpr {
                        expr: Expr::Ident(name),
                        ..
                    }) if NAMESPACES.contains(&name.as_str()) => {}
                    Some(target) => self.walk(target),
                    None => {}
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            Expr::List(list) => list.elements.iter().for_each(|e| self.walk(e)),
            Expr::Map(map) => {
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(entry) => {
                            self.walk(&entry.key);
                            self.walk(&entry.value);
                        }
                        EntryExpr::StructField(field) => self.walk(&field.value),
                    }
                }
            }
            Expr::Struct(fields) => {
                for entry in &fields.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(entry) => {
                            self.walk(&entry.key);
                            self.walk(&entry.value);
                        }
                        EntryExpr::StructField(field) => self.walk(&field.value),
                    }
                }
            }
            Expr::Comprehension(comprehension) => {
                self.walk(&comprehension.iter_range);
                self.walk(&comprehension.accu_init);
                let depth = self.bound.len();
                self.bound.push(comprehension.iter_var.clone());
                self.bound.extend(comprehension.iter_var2.clone());
                self.bound.push(comprehension.accu_var.clone());
                self.walk(&comprehension.loop_cond);
                self.walk(&comprehension.loop_step);
                self.walk(&comprehension.result);
                self.bound.truncate(depth);
            }
        }
    }

    /// The byte offset of a node in the expression's source.
    fn offset_of(&self, node: &IdedExpr) -> usize {
        let Some((start, _)) = self.info.offset_for(node.id) else {
            return 0;
        };
        let mut start = usize::try_from(start).unwrap_or(0).min(self.source.len());
        while !self.source.is_char_boundary(start) {
            start -= 1;
        }
        start
    }
}

/// When `node` is a chain of selections and literal indexes on a name, that name's node and
/// the chain's path.
fn chain(node: &IdedExpr) -> Option<(&IdedExpr, Vec<String>)> {
    let mut path = Vec::new();
    let mut current = node;
    loop {
        match &current.expr {
            Expr::Ident(name) => {
                path.push(name.clone());
                path.reverse();
                return Some((current, path));
            }
            Expr::Select(select) => {
                path.push(select.field.clone());
                current = &select.operand;
            }
            Expr::Call(call) if call.func_name == "_[_]" && call.target.is_none() => {
                let [operand, index] = call.args.as_slice() else {
                    return None;
                };
                match &index.expr {
                    Expr::Literal(LiteralValue::String(key)) => path.push(key.inner().to_owned()),
                    Expr::Literal(LiteralValue::Int(key)) => path.push(key.inner().to_string()),
                    Expr::Literal(LiteralValue::UInt(key)) => path.push(key.inner().to_string()),
                    _ => return None,
                }
                current = operand;
            }
            _ => return None,
        }
    }
}
