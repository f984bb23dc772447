//! A campaign's `where`: CEL over `user` (the profile's properties), `now`,
//! `did(event, days)` and `count(event, days)` (the profile's events of the
//! last `days` days, at most 90), and `time(value)`, which reads a
//! timestamp as profiles carry them (RFC 3339, `2012-11-20T15:26:17` as
//! UTC, a date, or Unix seconds). Compiled once per campaign, evaluated
//! per profile within the transforms' budget.

use cel::common::ast::{Expr, LiteralValue, operators};
use cel::objects::{Key, Map as CelMap};
use cel::{ExecutionError, IdedExpr};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::profiles::{Activity, Profile, WINDOW_DAYS, count_in, day_of};
use crate::transforms::{budget, checked_expression, to_cel};

/// The longest `where`, in characters.
pub const MAX_SOURCE: usize = 4096;

/// A compiled `where`.
#[derive(Clone)]
pub struct Audience {
    expression: Arc<IdedExpr>,
    /// The properties it reads, when it names each (`user.plan`,
    /// `user['Last Seen']`): only these are made CEL values. `None`: all.
    reads: Option<Arc<Vec<String>>>,
}

impl std::fmt::Debug for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audience")
            .field("reads", &self.reads)
            .finish()
    }
}

/// Where a `where` fails to compile: a 1-based column and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhereError {
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for WhereError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

const VARIABLES: [&str; 2] = ["user", "now"];

impl Audience {
    /// Compiles `source`; run it on a transform thread (deep stack).
    pub fn compile(source: &str) -> Result<Self, WhereError> {
        let at = |column: usize, message: String| WhereError { column, message };
        if source.trim().is_empty() {
            return Err(at(
                1,
                "is empty: write `true` to target every profile".into(),
            ));
        }
        if source.chars().count() > MAX_SOURCE {
            return Err(at(
                MAX_SOURCE + 1,
                format!("longer than {MAX_SOURCE} characters"),
            ));
        }
        let mut expression = checked_expression(source).map_err(|(c, m)| at(c, m))?;
        let refs = expression.references();
        if let Some(name) = refs
            .variables()
            .into_iter()
            .find(|v| !VARIABLES.contains(v))
        {
            let column = source
                .find(name)
                .map_or(1, |i| source[..i].chars().count() + 1);
            return Err(at(
                column,
                format!("unknown name {name}: the names are user, now, did(), count() and time()"),
            ));
        }
        check_windows(&expression, source)?;
        let mut reads = Vec::new();
        let reads = user_keys(&expression, &mut reads).then(|| {
            reads.sort();
            reads.dedup();
            Arc::new(reads)
        });
        budget::meter_loops(&mut expression);
        Ok(Self {
            expression: Arc::new(expression),
            reads,
        })
    }

    /// Whether the profile is in the audience at `now`; an error (a
    /// property missing or of another type, say) is a reason it is not.
    /// Call it on a transform thread.
    pub fn matches(&self, profile: &mut Profile, now: DateTime<Utc>) -> Result<bool, String> {
        let user = match (&profile.properties, &self.reads) {
            (None, _) => return Ok(false),
            (Some(props), Some(reads)) => {
                let map: HashMap<Key, cel::Value> = reads
                    .iter()
                    .filter_map(|k| {
                        props
                            .get(k)
                            .map(|v| (Key::String(Arc::new(k.clone())), to_cel(v)))
                    })
                    .collect();
                cel::Value::Map(CelMap { map: Arc::new(map) })
            }
            (Some(props), None) => to_cel(&Value::Object(props.clone())),
        };
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            std::mem::swap(&mut c.activity, &mut profile.activity);
            c.today = day_of(now);
        });
        let result = ROOT.with(|root| {
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(&budget::GAUGE);
            ctx.add_variable_from_value("user", user);
            ctx.add_variable_from_value("now", cel::Value::Timestamp(now.fixed_offset()));
            budget::start();
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                cel::Value::resolve(&self.expression, &ctx)
            }));
            if let Some(spent) = budget::spent() {
                return Err(format!(
                    "the expression took {spent} on this profile (its budget)"
                ));
            }
            match value {
                Ok(Ok(cel::Value::Bool(b))) => Ok(b),
                Ok(Ok(other)) => Err(format!(
                    "the expression gave {:?}, not true or false",
                    other.type_of()
                )),
                Ok(Err(e)) => Err(explain(&e)),
                // A panic of the evaluator is this profile's failure, not
                // the page's (the activity is put back below either way).
                Err(p) => Err(format!(
                    "the expression failed: {}",
                    crate::transforms::pool::panic_message(&*p)
                )),
            }
        });
        CURRENT.with(|c| std::mem::swap(&mut c.borrow_mut().activity, &mut profile.activity));
        result
    }
}

fn explain(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("the profile has no property {k}"),
        other => other.to_string(),
    }
}

/// Whether every use of `user` in `e` names a property (`user.k`,
/// `user['k']`, `has(user.k)`), gathering those names.
fn user_keys(e: &IdedExpr, out: &mut Vec<String>) -> bool {
    let is_user = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == "user");
    match &e.expr {
        Expr::Ident(n) => n != "user",
        Expr::Select(s) if is_user(&s.operand) => {
            out.push(s.field.clone());
            true
        }
        Expr::Call(c)
            if c.func_name == operators::INDEX && c.args.len() == 2 && is_user(&c.args[0]) =>
        {
            match &c.args[1].expr {
                Expr::Literal(LiteralValue::String(k)) => {
                    out.push(k.inner().to_string());
                    true
                }
                _ => false,
            }
        }
        _ => budget::children(e).into_iter().all(|c| user_keys(c, out)),
    }
}

/// `did` and `count` with a literal number of days outside 1..=90 are
/// refused now rather than failing on every profile.
fn check_windows(e: &IdedExpr, source: &str) -> Result<(), WhereError> {
    if let Expr::Call(c) = &e.expr
        && (c.func_name == "did" || c.func_name == "count")
        && c.target.is_none()
    {
        if c.args.len() != 2 {
            return Err(WhereError {
                column: column_of(source, &c.func_name),
                message: format!("{}(event, days) takes two arguments", c.func_name),
            });
        }
        if let Expr::Literal(LiteralValue::Int(days)) = &c.args[1].expr
            && !(1..=WINDOW_DAYS).contains(&i64::from(*days))
        {
            return Err(WhereError {
                column: column_of(source, &c.func_name),
                message: format!(
                    "{}: days must be from 1 to {WINDOW_DAYS}, not {}",
                    c.func_name,
                    i64::from(*days)
                ),
            });
        }
    }
    for child in budget::children(e) {
        check_windows(child, source)?;
    }
    Ok(())
}

fn column_of(source: &str, name: &str) -> usize {
    source
        .find(&format!("{name}("))
        .map_or(1, |i| source[..i].chars().count() + 1)
}

struct Current {
    activity: Activity,
    today: i64,
}

thread_local! {
    /// The activity of the profile being evaluated, for `did` and `count`.
    static CURRENT: RefCell<Current> = const {
        RefCell::new(Current { activity: BTreeMap::new(), today: 0 })
    };
    /// CEL's standard functions and ours, built once per thread.
    static ROOT: cel::Context<'static, 'static> = root();
}

fn events_in(event: &str, days: i64) -> Result<u64, ExecutionError> {
    if !(1..=WINDOW_DAYS).contains(&days) {
        return Err(ExecutionError::function_error(
            "count",
            format!("days must be from 1 to {WINDOW_DAYS}, not {days}"),
        ));
    }
    Ok(CURRENT.with(|c| {
        let c = c.borrow();
        count_in(&c.activity, event, days, c.today)
    }))
}

/// A timestamp from what profiles carry.
fn time(v: &cel::Value) -> Result<cel::Value, ExecutionError> {
    let fail = |what: String| ExecutionError::function_error("time", what);
    let t = match v {
        cel::Value::Timestamp(t) => return Ok(cel::Value::Timestamp(*t)),
        cel::Value::Int(secs) => DateTime::from_timestamp(*secs, 0),
        cel::Value::UInt(secs) => i64::try_from(*secs)
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0)),
        cel::Value::Float(secs) if secs.is_finite() => DateTime::from_timestamp(*secs as i64, 0),
        cel::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                    .ok()
                    .map(|t| t.and_utc())
            })
            .or_else(|| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
            })
            .ok_or_else(|| fail(format!("{s:?} is not a time")))
            .map(Some)?,
        other => return Err(fail(format!("{:?} is not a time", other.type_of()))),
    };
    t.map(|t| cel::Value::Timestamp(t.fixed_offset()))
        .ok_or_else(|| fail("out of range".into()))
}

fn root() -> cel::Context<'static, 'static> {
    let mut ctx = cel::Context::default();
    ctx.add_function("did", |event: Arc<String>, days: i64| {
        events_in(&event, days).map(|n| n > 0)
    })
    .expect("did is free");
    ctx.add_function("count", |event: Arc<String>, days: i64| {
        events_in(&event, days).map(|n| n as i64)
    })
    .expect("count is free");
    ctx.add_function(
        "time",
        |cel::extractors::Arguments(args): cel::extractors::Arguments| match args.as_slice() {
            [v] => time(v),
            _ => Err(ExecutionError::function_error("time", "takes one value")),
        },
    )
    .expect("time is free");
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn user(props: Value) -> Profile {
        Profile {
            distinct_id: "u".into(),
            properties: props.as_object().cloned(),
            ..Profile::default()
        }
    }

    fn run(source: &str, p: &mut Profile) -> Result<bool, String> {
        Audience::compile(source).unwrap().matches(p, now())
    }

    #[test]
    fn targets_by_properties_and_time() {
        let win_back = "time(user['Last Seen']) < now - duration('504h')";
        let mut old = user(json!({"Last Seen": "2026-10-01T10:00:00"}));
        let mut recent = user(json!({"Last Seen": "2026-11-19T10:00:00"}));
        assert_eq!(run(win_back, &mut old), Ok(true));
        assert_eq!(run(win_back, &mut recent), Ok(false));
        let rfc = "timestamp(user['Last Seen']) < now - duration('504h')";
        let mut z = user(json!({"Last Seen": "2026-10-01T10:00:00Z"}));
        assert_eq!(run(rfc, &mut z), Ok(true));
        let mut pro = user(json!({"plan": "pro", "seats": 12}));
        assert_eq!(
            run("user.plan == 'pro' && user.seats > 10", &mut pro),
            Ok(true)
        );
        // A missing property is a reason not to match, said.
        let e = run("user.plan == 'pro'", &mut old).unwrap_err();
        assert!(e.contains("plan"), "{e}");
        assert_eq!(
            run("has(user.plan) && user.plan == 'pro'", &mut old),
            Ok(false)
        );
        // A profile made only by events is in no audience.
        let mut bare = Profile::default();
        assert_eq!(run("true", &mut bare), Ok(false));
    }

    #[test]
    fn did_and_count_see_the_last_days() {
        let today = day_of(now());
        let mut p = user(json!({}));
        p.activity.insert(
            "login".into(),
            vec![(today - 20, 1), (today - 2, 2), (today, 1)],
        );
        assert_eq!(run("did('login', 1)", &mut p), Ok(true));
        assert_eq!(run("count('login', 3) == 3", &mut p), Ok(true));
        assert_eq!(run("count('login', 90) == 4", &mut p), Ok(true));
        assert_eq!(run("!did('purchase', 90)", &mut p), Ok(true));
        // The activity is the profile's again afterwards.
        assert_eq!(p.activity["login"].len(), 3);
    }

    #[test]
    fn reads_only_the_properties_it_names() {
        let a = Audience::compile("user.a == 1 || user['b c'] == 2 || has(user.d)").unwrap();
        assert_eq!(a.reads.as_deref().unwrap(), &["a", "b c", "d"]);
        let all = Audience::compile("size(user) > 2").unwrap();
        assert!(all.reads.is_none());
        let mut p = user(json!({"x": 1, "y": 2, "z": 3}));
        assert_eq!(all.matches(&mut p, now()), Ok(true));
    }

    #[test]
    fn compile_errors_name_the_column() {
        for (source, column, words) in [
            ("user.plan == ", 14, ""),
            ("profile.plan == 'pro'", 1, "unknown name profile"),
            (
                "user.a == 1 && did('login', 365)",
                16,
                "days must be from 1 to 90",
            ),
            ("", 1, "empty"),
            ("did('x')", 1, "two arguments"),
        ] {
            let e = Audience::compile(source).unwrap_err();
            assert_eq!(e.column, column, "{source}: {e}");
            assert!(e.message.contains(words), "{source}: {e}");
        }
        let e = run("user.n + 1", &mut user(json!({"n": 1}))).unwrap_err();
        assert!(e.contains("not true or false"), "{e}");
    }
}
