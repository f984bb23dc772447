//! A fast path for the expressions most transforms are made of: names, field
//! and index access, string and integer literals, and `+`. It reads the
//! posted JSON where it lies, with no conversion to CEL values, and answers
//! `None` whenever it is not certain to agree with CEL (a missing field, a
//! `+` of mixed types...), so the caller asks CEL, whose answer is the
//! reference. An equivalence test holds the two together.

use cel::common::ast::operators;
use cel::common::ast::{Expr, LiteralValue};
use serde_json::{Map, Value};

/// The longest text `+` makes here.
const MAX_TEXT: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub enum Fast {
    /// A top-level field of the payload, then steps into it.
    Path(String, Vec<Step>),
    Str(String),
    Int(i64),
    Add(Box<Fast>, Box<Fast>),
}

#[derive(Debug, Clone)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// The fast form of an expression, if it has one.
pub fn plan(e: &cel::IdedExpr) -> Option<Fast> {
    match &e.expr {
        Expr::Ident(name) => Some(Fast::Path(name.clone(), Vec::new())),
        Expr::Select(s) if !s.test => match plan(&s.operand)? {
            Fast::Path(root, mut steps) => {
                steps.push(Step::Field(s.field.clone()));
                Some(Fast::Path(root, steps))
            }
            _ => None,
        },
        Expr::Literal(LiteralValue::String(s)) => Some(Fast::Str(s.inner().to_string())),
        Expr::Literal(LiteralValue::Int(i)) => Some(Fast::Int(*i.inner())),
        Expr::Call(c) if c.target.is_none() && c.args.len() == 2 => match c.func_name.as_str() {
            operators::ADD => Some(Fast::Add(
                Box::new(plan(&c.args[0])?),
                Box::new(plan(&c.args[1])?),
            )),
            operators::INDEX => {
                let Fast::Path(root, mut steps) = plan(&c.args[0])? else {
                    return None;
                };
                let step = match &c.args[1].expr {
                    Expr::Literal(LiteralValue::Int(i)) => {
                        Step::Index(usize::try_from(*i.inner()).ok()?)
                    }
                    Expr::Literal(LiteralValue::String(s)) => Step::Field(s.inner().to_string()),
                    _ => return None,
                };
                steps.push(step);
                Some(Fast::Path(root, steps))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The value, or `None` when CEL must decide.
pub fn eval(f: &Fast, payload: &Map<String, Value>) -> Option<Value> {
    match f {
        Fast::Path(root, steps) => {
            let mut v = payload.get(root)?;
            for step in steps {
                v = match step {
                    Step::Field(k) => v.as_object()?.get(k)?,
                    Step::Index(i) => v.as_array()?.get(*i)?,
                };
            }
            Some(v.clone())
        }
        Fast::Str(s) => Some(Value::String(s.clone())),
        Fast::Int(i) => Some(Value::from(*i)),
        Fast::Add(a, b) => match (eval(a, payload)?, eval(b, payload)?) {
            // Long text goes to CEL, whose evaluation has a budget.
            (Value::String(x), Value::String(y)) if x.len() + y.len() > MAX_TEXT => None,
            (Value::String(mut x), Value::String(y)) => {
                x.push_str(&y);
                Some(Value::String(x))
            }
            (Value::Number(x), Value::Number(y)) => {
                Some(Value::from(x.as_i64()?.checked_add(y.as_i64()?)?))
            }
            _ => None,
        },
    }
}
