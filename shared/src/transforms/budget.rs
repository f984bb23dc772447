//! What one transform may cost: limits on its shape, checked when it is
//! compiled, and a budget of steps, bytes and time, enforced while it is
//! evaluated on one payload.
//!
//! CEL's parser and evaluator recurse once per level of the expression, and
//! each level of the parser takes about 120 KiB of stack in a debug build:
//! nesting is bounded before the parser runs, then the parsed tree's depth
//! and size, and both run on the transform threads' deep stacks (`pool`).
//! The evaluator has no budget of its own, so every comprehension (the loop
//! a list macro expands to) is rewritten to ask `@budget`, a name only this
//! module's resolver answers, before each element: once the evaluation has
//! taken more steps, allocated more bytes (counted by `crate::alloc`) or run
//! longer than its budget, the loop stops and the evaluation fails.

use cel::common::ast::{Expr, operators};
use cel::common::types::CelBool;
use cel::common::value::CowVal;
use cel::{IdedExpr, context::VariableResolver};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Brackets (`(`, `[`, `{`) open at once in one expression.
pub const MAX_NESTING: usize = 16;
/// The parser's own recursion limit (unary operators, ternaries and brackets).
pub const MAX_PARSER_RECURSION: u16 = 32;
/// Levels of the parsed expression (a chain `a + b + c` is one per `+`).
pub const MAX_DEPTH: usize = 48;
/// Nodes of the parsed expression.
pub const MAX_NODES: usize = 500;

/// Steps of one evaluation: names looked up and elements looped over.
pub const MAX_STEPS: u64 = 1_000_000;
/// Bytes one evaluation may allocate in all.
pub const MAX_BYTES: u64 = 32 << 20;
/// Time one evaluation may run.
pub const MAX_TIME: Duration = Duration::from_millis(250);

/// The name the rewritten loops ask; `@` cannot start a name in CEL source.
const BUDGET: &str = "@budget";

/// Where in the line's CEL source a bracket opens too deep (1-based
/// column), if one does; string literals are skipped.
pub fn too_deep(expression: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in expression.chars().enumerate() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i + 1);
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    None
}

/// Compiled size a `matches` pattern may have (the regex crate's own limit
/// is 10 MiB; matching costs up to its size times the text's length).
pub const MAX_PATTERN_BYTES: usize = 256 * 1024;

/// Why a `matches` call in `e` could cost more than is known at save time:
/// its pattern must be a literal (a pattern taken from the payload is
/// chosen by whoever posts) and compile within `MAX_PATTERN_BYTES`.
pub fn unbounded_pattern(e: &IdedExpr) -> Option<String> {
    if let Expr::Call(c) = &e.expr
        && c.func_name == "matches"
    {
        let pattern = match c.args.last().map(|a| &a.expr) {
            Some(Expr::Literal(cel::common::ast::LiteralValue::String(s))) => s.inner().to_string(),
            _ => {
                return Some(
                    "matches takes its pattern as a string literal, so that its cost is known when the transform is saved"
                        .into(),
                );
            }
        };
        if let Err(e) = regex::RegexBuilder::new(&pattern)
            .size_limit(MAX_PATTERN_BYTES)
            .build()
        {
            return Some(format!(
                "the pattern of matches does not compile within {} KiB: {e}",
                MAX_PATTERN_BYTES >> 10
            ));
        }
    }
    children(e).into_iter().find_map(unbounded_pattern)
}

/// The depth and node count of a parsed expression. Recursive, so only for
/// a tree the parser's recursion limit has already bounded.
pub fn shape(e: &IdedExpr) -> (usize, usize) {
    let mut depth = 0;
    let mut nodes = 1;
    for child in children(e) {
        let (d, n) = shape(child);
        depth = depth.max(d);
        nodes += n;
    }
    (depth + 1, nodes)
}

/// The expressions directly under `e`.
pub fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    use cel::common::ast::EntryExpr;
    match &e.expr {
        Expr::Call(c) => c.target.iter().map(|t| &**t).chain(&c.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(l) => l.elements.iter().collect(),
        Expr::Map(cel::common::ast::MapExpr { entries })
        | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Select(s) => vec![&s.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// Makes every loop in `e` ask the budget before each element.
///
/// cel's evaluator builds `map` and `filter` results in place only when
/// their loop condition is a literal, so those keep it and ask in their
/// step instead: `[x]` appended becomes `[@budget ? x : null]`, and a
/// filter's guard `g` becomes `@budget && g`. The others' condition `c`
/// becomes `@budget && c`. Once the budget is spent, asking unwinds the
/// evaluation (`Stop`).
pub fn meter_loops(e: &mut IdedExpr) {
    use cel::common::ast::EntryExpr;
    match &mut e.expr {
        Expr::Comprehension(c) => {
            for child in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                meter_loops(child);
            }
            let accu = c.accu_var.clone();
            let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == accu);
            let literal_cond = matches!(c.loop_cond.expr, Expr::Literal(_));
            let appends = literal_cond && is_accu(&c.result);
            let step = &mut c.loop_step;
            if appends && let Some(items) = appended(step, &accu) {
                for item in items.iter_mut() {
                    let inner = std::mem::take(item);
                    *item = ask(
                        inner.id,
                        operators::CONDITIONAL,
                        vec![inner, literal(cel::common::ast::LiteralValue::Null)],
                    );
                }
                if let Expr::Call(call) = &mut step.expr
                    && call.func_name == operators::CONDITIONAL
                {
                    let guard = std::mem::take(&mut call.args[0]);
                    call.args[0] = ask(guard.id, operators::LOGICAL_AND, vec![guard]);
                }
            } else {
                let cond = std::mem::take(&mut c.loop_cond);
                c.loop_cond = ask(cond.id, operators::LOGICAL_AND, vec![cond]);
            }
        }
        Expr::Call(c) => {
            if let Some(t) = c.target.as_deref_mut() {
                meter_loops(t);
            }
            c.args.iter_mut().for_each(meter_loops);
        }
        Expr::List(l) => l.elements.iter_mut().for_each(meter_loops),
        Expr::Map(m) => {
            for entry in m.entries.iter_mut() {
                match &mut entry.expr {
                    EntryExpr::MapEntry(m) => {
                        meter_loops(&mut m.key);
                        meter_loops(&mut m.value);
                    }
                    EntryExpr::StructField(f) => meter_loops(&mut f.value),
                }
            }
        }
        Expr::Struct(s) => {
            for entry in s.entries.iter_mut() {
                if let EntryExpr::StructField(f) = &mut entry.expr {
                    meter_loops(&mut f.value);
                }
            }
        }
        Expr::Select(s) => meter_loops(&mut s.operand),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// The elements of the list a `map`/`filter` step appends to `accu`:
/// `accu + [x]`, or `g ? accu + [x] : accu`.
fn appended<'a>(step: &'a mut IdedExpr, accu: &str) -> Option<&'a mut Vec<IdedExpr>> {
    let guarded = matches!(&step.expr,
        Expr::Call(c) if c.func_name == operators::CONDITIONAL && c.args.len() == 3);
    let add = if guarded {
        match &mut step.expr {
            Expr::Call(call) => &mut call.args[1],
            _ => return None,
        }
    } else {
        step
    };
    let Expr::Call(add) = &mut add.expr else {
        return None;
    };
    if add.func_name != operators::ADD || add.args.len() != 2 {
        return None;
    }
    if !matches!(&add.args[0].expr, Expr::Ident(n) if n == accu) {
        return None;
    }
    match &mut add.args[1].expr {
        Expr::List(l) => Some(&mut l.elements),
        _ => None,
    }
}

/// `op(@budget, rest...)`, with the id of the node it wraps (for errors).
fn ask(id: u64, op: &str, rest: Vec<IdedExpr>) -> IdedExpr {
    let mut args = vec![IdedExpr {
        id,
        expr: Expr::Ident(BUDGET.to_string()),
    }];
    args.extend(rest);
    IdedExpr {
        id,
        expr: Expr::Call(cel::common::ast::CallExpr {
            func_name: op.to_string(),
            target: None,
            args,
        }),
    }
}

fn literal(v: cel::common::ast::LiteralValue) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Literal(v),
    }
}

/// Why an evaluation was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    Steps,
    Bytes,
    Time,
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spent::Steps => write!(f, "more than {MAX_STEPS} steps"),
            Spent::Bytes => write!(f, "more than {} MiB of memory", MAX_BYTES >> 20),
            Spent::Time => write!(f, "more than {} ms", MAX_TIME.as_millis()),
        }
    }
}

/// The budget of the evaluation running on this thread.
struct Meter {
    steps: Cell<u64>,
    bytes_end: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    spent: Cell<Option<Spent>>,
}

thread_local! {
    static METER: Meter = const {
        Meter {
            steps: Cell::new(0),
            bytes_end: Cell::new(u64::MAX),
            deadline: Cell::new(None),
            spent: Cell::new(None),
        }
    };
}

/// Starts the budget of an evaluation on this thread.
pub fn start() {
    METER.with(|m| {
        m.steps.set(0);
        m.bytes_end
            .set(crate::alloc::allocated().saturating_add(MAX_BYTES));
        m.deadline.set(Some(Instant::now() + MAX_TIME));
        m.spent.set(None);
    });
}

/// What ran out in the evaluation on this thread, if anything did (memory
/// is checked once more: allocations after the last step count too).
pub fn spent() -> Option<Spent> {
    check();
    METER.with(|m| {
        if m.spent.get().is_none() && m.deadline.get().is_some_and(|d| Instant::now() > d) {
            m.spent.set(Some(Spent::Time));
        }
        m.spent.get()
    })
}

/// Unwinds an evaluation whose budget is spent (`Gauge`), without the
/// panic hook's report: not a bug, and caught where the evaluation started.
pub struct Stop;

/// Charges a step; false once anything has run out.
fn check() -> bool {
    METER.with(|m| {
        if m.spent.get().is_some() {
            return false;
        }
        let steps = m.steps.get() + 1;
        m.steps.set(steps);
        let spent = if steps > MAX_STEPS {
            Some(Spent::Steps)
        } else if crate::alloc::allocated() > m.bytes_end.get() {
            Some(Spent::Bytes)
        // The clock every 32 steps: reading it costs more than most steps,
        // and 32 steps take far less than the time budget's grain.
        } else if steps % 32 == 0 && m.deadline.get().is_some_and(|d| Instant::now() > d) {
            Some(Spent::Time)
        } else {
            None
        };
        m.spent.set(spent);
        spent.is_none()
    })
}

/// The resolver set on every evaluation's context: it charges a step for
/// every name looked up and answers `@budget`; once the budget is spent it
/// unwinds with `Stop`. Its state is the thread's.
pub struct Gauge;

pub static GAUGE: Gauge = Gauge;

impl VariableResolver for Gauge {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        if !check() {
            // Stop at once, not at the end: work that never loops or looks a
            // name up again is bounded by the expression's size, but what a
            // name looked up now would copy is not.
            std::panic::resume_unwind(Box::new(Stop));
        }
        (variable == BUDGET).then_some(CowVal::Borrowed(&CelBool::TRUE))
    }
}
