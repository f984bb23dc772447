//! The transform language of triggers (Mixmax transforms, Heymarket "map fields").
//!
//! A transform is lines of `target = expression`; `#` starts a comment.
//! Targets are the contact's `email`, `name`, `first_name`, `last_name`,
//! `phone_number`, or `fields.<key>`. Expressions are CEL (the `cel` crate)
//! over the posted JSON, whose top-level keys are the variables; Mixmax's
//! `a.0.b` index form is read as `a[0].b`. A transform is compiled once and
//! then evaluated per request.

pub mod budget;
mod fast;
pub mod paths;
pub mod pool;
mod syntax;

pub use paths::leaf_paths;

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// The longest transform, in characters.
pub const MAX_SOURCE: usize = 16 * 1024;

/// Where a contact's value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Email,
    Name,
    FirstName,
    LastName,
    PhoneNumber,
    Field(String),
    /// A dotted path in a JSON body (payload transforms of webhooks).
    Path(Vec<String>),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Email => f.write_str("email"),
            Target::Name => f.write_str("name"),
            Target::FirstName => f.write_str("first_name"),
            Target::LastName => f.write_str("last_name"),
            Target::PhoneNumber => f.write_str("phone_number"),
            Target::Field(k) => write!(f, "fields.{k}"),
            Target::Path(keys) => f.write_str(&keys.join(".")),
        }
    }
}

/// A compile error, placed where the user can find it (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// A failure while evaluating a transform on one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub line: usize,
    /// Where the line's expression begins (0 where no line is at fault).
    pub column: usize,
    pub target: String,
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column == 0 {
            return write!(f, "line {} ({}): {}", self.line, self.target, self.message);
        }
        write!(
            f,
            "line {}, column {} ({}): {}",
            self.line, self.column, self.target, self.message
        )
    }
}

/// The contact fields a payload yields. Absent and null values are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFields {
    pub email: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub fields: Map<String, Value>,
}

struct Assignment {
    line: usize,
    /// Where the expression begins on its line.
    column: usize,
    target: Target,
    /// The expression with its loops metered (`budget::meter_loops`).
    expression: cel::IdedExpr,
    fast: Option<fast::Fast>,
}

/// A compiled transform: cheap to share, evaluated many times.
#[derive(Clone)]
pub struct Transform {
    assignments: Arc<Vec<Assignment>>,
    /// The payload's top-level keys the expressions read.
    variables: Arc<BTreeSet<String>>,
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transform")
            .field("lines", &self.assignments.len())
            .finish()
    }
}

impl Transform {
    pub fn compile(source: &str) -> Result<Self, TransformError> {
        Self::compile_for(source, syntax::Targets::Contact)
    }

    /// A payload transform: its targets are dotted paths in the JSON body
    /// it builds (`evaluate_payload`).
    pub fn compile_payload(source: &str) -> Result<Self, TransformError> {
        Self::compile_for(source, syntax::Targets::Paths)
    }

    fn compile_for(source: &str, targets: syntax::Targets) -> Result<Self, TransformError> {
        let mut assignments = Vec::new();
        let mut variables = BTreeSet::new();
        let mut seen: Vec<(Target, usize)> = Vec::new();
        for (i, raw) in source.lines().enumerate() {
            let line = i + 1;
            let Some(parsed) = syntax::parse_line_in(raw, line, targets)? else {
                continue;
            };
            if let Some((_, first)) = seen.iter().find(|(t, _)| overlaps(t, &parsed.target)) {
                return Err(TransformError {
                    line,
                    column: 1,
                    message: format!("{} is already set on line {first}", parsed.target),
                });
            }
            seen.push((parsed.target.clone(), line));
            let at = |col: usize, message: String| TransformError {
                line,
                column: parsed.column_of(col),
                message,
            };
            let mut expression =
                checked_expression(&parsed.expression).map_err(|(col, m)| at(col, m))?;
            variables.extend(
                expression
                    .references()
                    .variables()
                    .into_iter()
                    .map(String::from),
            );
            let fast = fast::plan(&expression);
            budget::meter_loops(&mut expression);
            assignments.push(Assignment {
                line,
                column: parsed.column_of(1),
                target: parsed.target,
                fast,
                expression,
            });
        }
        if assignments.is_empty() {
            return Err(TransformError {
                line: 1,
                column: 1,
                message: "the transform sets nothing: write lines like `email = candidate.email`"
                    .into(),
            });
        }
        Ok(Self {
            assignments: Arc::new(assignments),
            variables: Arc::new(variables),
        })
    }

    /// Compiles a payload transform on a transform thread (see `pool`).
    pub async fn compile_payload_bounded(
        source: String,
    ) -> Result<Result<Self, TransformError>, pool::Failed> {
        pool::run(move || Self::compile_payload(&source)).await
    }

    /// The JSON body a payload transform makes of `event`.
    pub async fn evaluate_payload(
        &self,
        event: &Map<String, Value>,
    ) -> Result<Result<Map<String, Value>, EvalError>, pool::Failed> {
        Ok(self.evaluate(event).await?.map(|out| out.fields))
    }

    /// Compiles on a transform thread (see `pool`), answering also how many
    /// bytes compiling allocated: a bound on what the result keeps.
    pub async fn compile_bounded(
        source: String,
    ) -> Result<Result<(Self, u64), TransformError>, pool::Failed> {
        pool::run(move || {
            let before = crate::alloc::allocated();
            Self::compile(&source).map(|t| (t, crate::alloc::allocated() - before))
        })
        .await
    }

    /// The contact fields this payload yields, evaluated on a transform
    /// thread unless the fast path answers every line.
    pub async fn evaluate(
        &self,
        payload: &Map<String, Value>,
    ) -> Result<Result<ContactFields, EvalError>, pool::Failed> {
        if let Some(done) = self.fast_only(payload) {
            return Ok(done);
        }
        let variables: Map<String, Value> = self
            .variables
            .iter()
            .filter_map(|k| payload.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let this = self.clone();
        pool::run(move || this.apply(&variables)).await
    }

    /// The answer when the fast path answers every line.
    fn fast_only(&self, payload: &Map<String, Value>) -> Option<Result<ContactFields, EvalError>> {
        let mut out = ContactFields::default();
        for a in self.assignments.iter() {
            let value = fast::eval(a.fast.as_ref()?, payload)?;
            if let Err(m) = assign(&mut out, &a.target, value) {
                return Some(Err(a.error(m)));
            }
        }
        Some(Ok(out))
    }

    /// The contact fields this payload yields, on this thread: for tests and
    /// benchmarks, and for the transform threads (`evaluate`).
    pub fn apply(&self, payload: &Map<String, Value>) -> Result<ContactFields, EvalError> {
        self.apply_with(payload, true)
    }

    /// As `apply`, choosing whether the fast path may answer (for tests and
    /// benchmarks that compare it with CEL).
    pub fn apply_with(
        &self,
        payload: &Map<String, Value>,
        fast_path: bool,
    ) -> Result<ContactFields, EvalError> {
        let mut out = ContactFields::default();
        let mut slow = Vec::new();
        for a in self.assignments.iter() {
            match a
                .fast
                .as_ref()
                .filter(|_| fast_path)
                .and_then(|f| fast::eval(f, payload))
            {
                Some(value) => assign(&mut out, &a.target, value).map_err(|m| a.error(m))?,
                None => slow.push(a),
            }
        }
        if slow.is_empty() {
            return Ok(out);
        }
        ROOT.with(|root| {
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(&budget::GAUGE);
            for name in self.variables.iter() {
                if let Some(v) = payload.get(name) {
                    ctx.add_variable_from_value(name.as_str(), to_cel(v));
                }
            }
            // One budget for the whole payload, however many lines.
            budget::start();
            for a in slow {
                let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    cel::Value::resolve(&a.expression, &ctx)
                        .map_err(|e| explain(&e))
                        .and_then(|v| to_json(&v, 0))
                }));
                if let Some(spent) = budget::spent() {
                    return Err(a.error(format!(
                        "the transform took {spent} on this payload (its budget)"
                    )));
                }
                let json = match value {
                    Ok(v) => v.map_err(|m| a.error(m))?,
                    Err(p) if p.is::<budget::Stop>() => {
                        unreachable!("a budget stop leaves the budget spent")
                    }
                    Err(p) => std::panic::resume_unwind(p),
                };
                assign(&mut out, &a.target, json).map_err(|m| a.error(m))?;
            }
            Ok(out)
        })
    }
}

/// One CEL expression, parsed and checked against the limits of what one
/// evaluation may cost (nesting, size, patterns, nested list macros); an
/// error is placed at its 1-based column. Its loops are not metered yet
/// (`budget::meter_loops`).
pub fn checked_expression(source: &str) -> Result<cel::IdedExpr, (usize, String)> {
    if let Some(col) = budget::too_deep(source) {
        return Err((
            col,
            format!(
                "brackets nest more than {} deep here: split the expression",
                budget::MAX_NESTING
            ),
        ));
    }
    let expression = cel::parser::Parser::new()
        .max_recursion_depth(budget::MAX_PARSER_RECURSION)
        .parse(source)
        .map_err(|e| {
            let first = e.errors.first();
            if first.is_some_and(|p| p.msg.contains("Recursion limit")) {
                return (
                    1,
                    format!(
                        "the expression nests too deeply (brackets, ternaries and unary operators at most {} levels): split it",
                        budget::MAX_PARSER_RECURSION
                    ),
                );
            }
            first.map_or((1, e.to_string()), |p| {
                (p.pos.1.max(1) as usize, p.msg.clone())
            })
        })?;
    let (depth, nodes) = budget::shape(&expression);
    if depth > budget::MAX_DEPTH || nodes > budget::MAX_NODES {
        return Err((
            1,
            format!(
                "the expression is too large ({depth} levels, {nodes} parts; at most {} and {}): split it",
                budget::MAX_DEPTH,
                budget::MAX_NODES
            ),
        ));
    }
    if let Some(message) = budget::unbounded_pattern(&expression) {
        return Err((1, message));
    }
    if comprehension_depth(&expression) > 1 {
        return Err((
            1,
            "a list macro (map, filter, all, exists, exists_one) inside another \
             is not allowed: its cost would multiply the list sizes"
                .into(),
        ));
    }
    Ok(expression)
}

impl Assignment {
    fn error(&self, message: String) -> EvalError {
        EvalError {
            line: self.line,
            column: self.column,
            target: self.target.to_string(),
            message,
        }
    }
}

thread_local! {
    /// CEL's standard functions, built once per thread: building them per
    /// evaluation costs more than the evaluation.
    static ROOT: cel::Context<'static, 'static> = cel::Context::default();
}

/// Whether two targets set the same value: the same, or one inside the
/// other (`a` and `a.b`).
fn overlaps(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Path(x), Target::Path(y)) => x.iter().zip(y).all(|(p, q)| p == q),
        _ => a == b,
    }
}

/// JSON to CEL. Integers are CEL `int` whenever they fit, so that `score * 2`
/// works: serde would hand positive ones over as `uint`, and CEL does not mix
/// `uint` and `int` in arithmetic.
pub fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let map: std::collections::HashMap<cel::objects::Key, cel::Value> = map
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
        }
    }
}

/// Levels a value a transform makes may have: DynamoDB keeps 32 in an
/// item, and the deepest copy is the request log's `contact.fields.<key>`,
/// four levels down.
pub const MAX_VALUE_DEPTH: usize = 27;

/// CEL to JSON, refusing what a contact cannot keep: numbers that are not
/// finite, and values nested deeper than `MAX_VALUE_DEPTH`. Its size is
/// bounded by the evaluation's budget and checked again by the store.
fn to_json(v: &cel::Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "the value nests more than {MAX_VALUE_DEPTH} levels deep"
        ));
    }
    Ok(match v {
        cel::Value::List(items) => Value::Array(
            items
                .iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        cel::Value::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    other => cel::Value::from(other.clone())
                        .json()
                        .map(|k| match k {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .map_err(|e| format!("the value cannot be stored: {e:?}"))?,
                };
                out.insert(key, to_json(v, depth + 1)?);
            }
            Value::Object(out)
        }
        cel::Value::Float(f) if !f.is_finite() => {
            return Err(format!(
                "the value {f} is not a finite number, which a contact cannot keep"
            ));
        }
        atom => atom
            .json()
            .map_err(|e| format!("the value cannot be stored: {e:?}"))?,
    })
}

fn explain(e: &cel::ExecutionError) -> String {
    match e {
        cel::ExecutionError::NoSuchKey(k) => format!("the payload has no field {k}"),
        cel::ExecutionError::UndeclaredReference(k) => format!("the payload has no field {k}"),
        other => other.to_string(),
    }
}

/// Refused in payloads and in what transforms make, on every platform,
/// rather than failing on AWS only after the request was accepted.
pub use crate::ports::store::number_out_of_range;

/// How deeply list macros (expanded to comprehensions) nest in `e`: each
/// level multiplies the work by a list's length, so more than one could
/// keep a worker busy for hours on a payload within the size limit. Only
/// what runs for every element nests; a macro's list, its start and its
/// result run once, so a chain (`a.filter(...).map(...)`) adds, not
/// multiplies, and is depth 1.
fn comprehension_depth(e: &cel::IdedExpr) -> usize {
    let deepest = |es: &mut dyn Iterator<Item = &cel::IdedExpr>| {
        es.map(comprehension_depth).max().unwrap_or(0)
    };
    match &e.expr {
        cel::common::ast::Expr::Comprehension(c) => {
            let once = deepest(&mut [&c.iter_range, &c.accu_init, &c.result].into_iter());
            let each = 1 + deepest(&mut [&c.loop_cond, &c.loop_step].into_iter());
            once.max(each)
        }
        _ => deepest(&mut budget::children(e).into_iter()),
    }
}

/// Text for a contact field: strings as they are, whole numbers as digits
/// (phone numbers often arrive as numbers, at times as `12155556677.0`),
/// null as absent. Other numbers are refused: `1.5` or `1e300` as digits
/// would be a wrong phone number, not a missing one.
fn text(value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Value::Number(n) => match n.as_f64() {
            // Exactly an integer, and within what a double holds exactly.
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                Ok(Some(format!("{}", f as i64)))
            }
            _ => Err(format!(
                "expected text or a whole number, got the number {n}"
            )),
        },
        Value::Bool(b) => Err(format!("expected text, got the boolean {b}")),
        Value::Array(_) => Err("expected text, got a list".into()),
        Value::Object(_) => Err("expected text, got an object".into()),
    }
}

fn assign(out: &mut ContactFields, target: &Target, value: Value) -> Result<(), String> {
    match target {
        Target::Email => out.email = text(value)?,
        Target::Name => out.name = text(value)?,
        Target::FirstName => out.first_name = text(value)?,
        Target::LastName => out.last_name = text(value)?,
        Target::PhoneNumber => out.phone_number = text(value)?,
        Target::Path(keys) => {
            let (last, parents) = keys.split_last().expect("a path has a key");
            let mut at = &mut out.fields;
            for k in parents {
                let slot = at
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                at = slot.as_object_mut().expect("paths do not overlap");
            }
            at.insert(last.clone(), value);
        }
        Target::Field(key) => {
            if let Some(n) = number_out_of_range(&value) {
                return Err(format!(
                    "the number {n} is outside what a contact can keep: magnitudes from 1e-130 to 9.99e125, or 0"
                ));
            }
            if !value.is_null() {
                out.fields.insert(key.clone(), value);
            }
        }
    }
    Ok(())
}

/// Without a transform: the payload's own top-level contact fields (Mixmax's
/// `email` and `name`, Heymarket's `phone_number`, `first_name`, `last_name`).
pub fn direct(payload: &Map<String, Value>) -> Result<ContactFields, EvalError> {
    let mut out = ContactFields::default();
    for target in [
        Target::Email,
        Target::Name,
        Target::FirstName,
        Target::LastName,
        Target::PhoneNumber,
    ] {
        if let Some(v) = payload.get(&target.to_string()) {
            assign(&mut out, &target, v.clone()).map_err(|message| EvalError {
                line: 0,
                column: 0,
                target: target.to_string(),
                message,
            })?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
