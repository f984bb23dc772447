//! A campaign's `where`: CEL over `user` (the profile's properties), `now`,
//! `did(event, days)` and `count(event, days)` (the profile's events of the
//! last `days` days, at most 90), and `time(value)`, which reads a
//! timestamp as profiles carry them (RFC 3339, `2012-11-20T15:26:17` as
//! UTC, a date, or Unix seconds). Compiled once per campaign, evaluated
//! per profile within the transforms' budget.

use cel::common::ast::{Expr, LiteralValue, operators};
use cel::{ExecutionError, IdedExpr};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::profiles::{Activity, Profile, WINDOW_DAYS, count_in, day_of};
use crate::transforms::{budget, checked_expression, to_cel};

/// The longest `where`, in characters.
pub const MAX_SOURCE: usize = 4096;

/// A compiled `where`.
#[derive(Clone)]
pub struct Audience {
    expression: Arc<IdedExpr>,
    /// The expression with nothing taken out: evaluated instead when a
    /// part taken out fails (`timestamp('bad')`), as that part may be one
    /// that `&&`, `||` or `?:` would not have reached.
    plain: Arc<IdedExpr>,
    /// How `user` reaches the expression.
    user: Arc<User>,
    /// Parts that depend on nothing of a profile (`now - duration('504h')`),
    /// taken out of the expression as `@k0`, `@k1`...: worked out once per
    /// page, not once per profile.
    constants: Arc<Vec<IdedExpr>>,
}

/// How `user` reaches the expression.
enum User {
    /// Each property it names (`user.plan`, `user['Last Seen']`) is a name
    /// of its own, `@u0`, `@u1`...: looked up in the profile's JSON when
    /// read, with no map built per profile.
    Named(Vec<String>),
    /// `user` as a whole (`size(user)`, `has(user.x)`, `user[k]`): the
    /// profile's properties made a CEL map per profile.
    Whole,
}

impl std::fmt::Debug for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reads = match &*self.user {
            User::Named(names) => Some(names),
            User::Whole => None,
        };
        f.debug_struct("Audience")
            .field("reads", &reads)
            .field("constants", &self.constants.len())
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

/// What matching a page of profiles found.
#[derive(Debug, Default)]
pub struct Judged {
    /// The ids of the profiles in the audience.
    pub matched: Vec<String>,
    /// Profiles the expression failed on, and the first failure.
    pub errors: usize,
    pub first_error: Option<String>,
    /// When the page ran past its deadline: the last profile judged (the
    /// rest are still to be).
    pub stopped_at: Option<String>,
}

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
        if let Some(name) = loop_variable(&expression, &VARIABLES) {
            return Err(at(
                source
                    .find(&format!("({name},"))
                    .map_or(1, |i| source[..i].chars().count() + 2),
                format!("{name} names the profile's data: name the loop's variable otherwise"),
            ));
        }
        let mut reads = Vec::new();
        let user = if user_keys(&expression, &mut reads) {
            reads.sort();
            reads.dedup();
            name_properties(&mut expression, &reads);
            User::Named(reads)
        } else {
            User::Whole
        };
        let mut plain = expression.clone();
        budget::meter_loops(&mut plain);
        let mut constants = Vec::new();
        hoist(&mut expression, &mut constants);
        budget::meter_loops(&mut expression);
        for c in constants.iter_mut() {
            budget::meter_loops(c);
        }
        Ok(Self {
            expression: Arc::new(expression),
            plain: Arc::new(plain),
            user: Arc::new(user),
            constants: Arc::new(constants),
        })
    }

    /// Whether the profile is in the audience at `now`; an error (a
    /// property missing or of another type, say) is a reason it is not.
    /// Call it on a transform thread.
    pub fn matches(&self, profile: &mut Profile, now: DateTime<Utc>) -> Result<bool, String> {
        let judged = self.judge(std::slice::from_mut(profile), now, None);
        match judged.first_error {
            Some(e) => Err(e),
            None => Ok(!judged.matched.is_empty()),
        }
    }

    /// Matches a page of profiles at `now`, until `deadline` if one is
    /// given (at least one profile is judged). Call it on a transform
    /// thread.
    pub fn judge(
        &self,
        page: &mut [Profile],
        now: DateTime<Utc>,
        deadline: Option<std::time::Instant>,
    ) -> Judged {
        let mut judged = Judged::default();
        let (expression, constants) = match self.constants_at(now) {
            Ok(values) => (&*self.expression, values),
            Err(_) => (&*self.plain, Vec::new()),
        };
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            c.today = day_of(now);
            c.now = Some(now);
            c.constants = constants;
            c.names = match &*self.user {
                User::Named(names) => names.clone(),
                User::Whole => Vec::new(),
            };
        });
        for profile in page.iter_mut() {
            match self.one(expression, profile) {
                Ok(true) => judged.matched.push(profile.distinct_id.clone()),
                Ok(false) => {}
                Err(e) => {
                    judged.errors += 1;
                    judged.first_error.get_or_insert(e);
                }
            }
            if deadline.is_some_and(|d| std::time::Instant::now() > d) {
                judged.stopped_at = Some(profile.distinct_id.clone());
                break;
            }
        }
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            c.constants.clear();
            c.names.clear();
        });
        judged
    }

    /// The hoisted parts' values at `now`.
    fn constants_at(&self, now: DateTime<Utc>) -> Result<Vec<cel::Value>, String> {
        ROOT.with(|root| {
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(&budget::GAUGE);
            ctx.add_variable_from_value("now", cel::Value::Timestamp(now.fixed_offset()));
            self.constants
                .iter()
                .map(|c| {
                    budget::start();
                    let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        cel::Value::resolve(c, &ctx)
                    }));
                    if let Some(spent) = budget::spent() {
                        return Err(format!("the expression took {spent} (its budget)"));
                    }
                    match value {
                        Ok(v) => v.map_err(|e| explain(&e, &[])),
                        Err(p) => Err(format!(
                            "the expression failed: {}",
                            crate::transforms::pool::panic_message(&*p)
                        )),
                    }
                })
                .collect()
        })
    }

    /// One profile, with the page's `now` and constants in place.
    fn one(&self, expression: &IdedExpr, profile: &mut Profile) -> Result<bool, String> {
        let Some(properties) = profile.properties.take() else {
            return Ok(false);
        };
        let whole =
            matches!(&*self.user, User::Whole).then(|| to_cel(&Value::Object(properties.clone())));
        // The profile's data where `did`, `count` and `@u…` find it, and back.
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            std::mem::swap(&mut c.activity, &mut profile.activity);
            c.properties = Some(properties);
        });
        let result = ROOT.with(|root| {
            let mut ctx = root.new_inner_scope();
            ctx.set_variable_resolver(&RESOLVER);
            if let Some(user) = whole {
                ctx.add_variable_from_value("user", user);
            }
            budget::start();
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                cel::Value::resolve(expression, &ctx)
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
                Ok(Err(e)) => Err(CURRENT.with(|c| explain(&e, &c.borrow().names))),
                // A panic of the evaluator is this profile's failure, not
                // the page's (the profile's data is put back below).
                Err(p) => Err(format!(
                    "the expression failed: {}",
                    crate::transforms::pool::panic_message(&*p)
                )),
            }
        });
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            std::mem::swap(&mut c.activity, &mut profile.activity);
            profile.properties = c.properties.take();
        });
        result
    }
}

fn explain(e: &ExecutionError, names: &[String]) -> String {
    let property = |name: &str| {
        name.strip_prefix("@u")
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| names.get(i))
            .map(|p| format!("the profile has no property {p}"))
    };
    match e {
        ExecutionError::NoSuchKey(k) => format!("the profile has no property {k}"),
        ExecutionError::UndeclaredReference(name) => {
            property(name).unwrap_or_else(|| e.to_string())
        }
        other => other.to_string(),
    }
}

/// Whether every use of `user` in `e` names a property (`user.k`,
/// `user['k']`), gathering those names. `has(user.k)` asks of `user` as a
/// whole.
fn user_keys(e: &IdedExpr, out: &mut Vec<String>) -> bool {
    let is_user = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == "user");
    match &e.expr {
        Expr::Ident(n) => n != "user",
        Expr::Select(s) if is_user(&s.operand) => {
            out.push(s.field.clone());
            !s.test
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

/// A loop (`exists`, `map`...) whose variable is one of `names`, which
/// would hide the name inside it.
fn loop_variable<'a>(e: &IdedExpr, names: &[&'a str]) -> Option<&'a str> {
    if let Expr::Comprehension(c) = &e.expr
        && let Some(name) = names
            .iter()
            .find(|n| c.iter_var == **n || c.iter_var2.as_deref() == Some(**n))
    {
        return Some(name);
    }
    budget::children(e)
        .into_iter()
        .find_map(|c| loop_variable(c, names))
}

/// The sub-expressions directly under `e`, to change.
fn children_mut(e: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    use cel::common::ast::EntryExpr;
    match &mut e.expr {
        Expr::Call(c) => c
            .target
            .iter_mut()
            .map(|t| &mut **t)
            .chain(c.args.iter_mut())
            .collect(),
        Expr::Comprehension(c) => {
            let c = &mut **c;
            vec![
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ]
        }
        Expr::List(l) => l.elements.iter_mut().collect(),
        Expr::Map(cel::common::ast::MapExpr { entries })
        | Expr::Struct(cel::common::ast::StructExpr { entries, .. }) => entries
            .iter_mut()
            .flat_map(|entry| match &mut entry.expr {
                EntryExpr::MapEntry(m) => vec![&mut m.key, &mut m.value],
                EntryExpr::StructField(f) => vec![&mut f.value],
            })
            .collect(),
        Expr::Select(s) => vec![&mut *s.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// `user.k` and `user['k']` become `@u{i}`, `i` the place of `k` in `names`.
fn name_properties(e: &mut IdedExpr, names: &[String]) {
    let is_user = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == "user");
    let named = match &e.expr {
        Expr::Select(s) if is_user(&s.operand) && !s.test => Some(s.field.clone()),
        Expr::Call(c)
            if c.func_name == operators::INDEX && c.args.len() == 2 && is_user(&c.args[0]) =>
        {
            match &c.args[1].expr {
                Expr::Literal(LiteralValue::String(k)) => Some(k.inner().to_string()),
                _ => None,
            }
        }
        _ => None,
    };
    match named.and_then(|k| names.iter().position(|n| *n == k)) {
        Some(i) => e.expr = Expr::Ident(format!("@u{i}")),
        None => children_mut(e)
            .into_iter()
            .for_each(|c| name_properties(c, names)),
    }
}

/// Whether `e` is the same for every profile of a page: literals, `now`,
/// and calls of them (not `did` or `count`, nor a loop's variables).
fn constant(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(_) => true,
        Expr::Ident(n) => n == "now",
        Expr::Comprehension(_) | Expr::Unspecified | Expr::Struct(_) => false,
        Expr::Call(c) if c.func_name == "did" || c.func_name == "count" => false,
        _ => budget::children(e).into_iter().all(constant),
    }
}

/// Takes the largest constant parts out of `e` (as `@k{i}`, `i` their
/// place in `out`); a bare literal or `now` stays.
fn hoist(e: &mut IdedExpr, out: &mut Vec<IdedExpr>) {
    let trivial = matches!(&e.expr, Expr::Literal(_) | Expr::Ident(_));
    if !trivial && constant(e) {
        let name = format!("@k{}", out.len());
        let id = e.id;
        out.push(std::mem::replace(
            e,
            IdedExpr {
                id,
                expr: Expr::Ident(name),
            },
        ));
        return;
    }
    for c in children_mut(e) {
        hoist(c, out);
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
    properties: Option<serde_json::Map<String, Value>>,
    now: Option<DateTime<Utc>>,
    constants: Vec<cel::Value>,
    names: Vec<String>,
}

thread_local! {
    /// The profile being evaluated and its page's values, for `did`,
    /// `count` and the names the resolver answers.
    static CURRENT: RefCell<Current> = const {
        RefCell::new(Current {
            activity: BTreeMap::new(),
            today: 0,
            properties: None,
            now: None,
            constants: Vec::new(),
            names: Vec::new(),
        })
    };
    /// CEL's standard functions and ours, built once per thread.
    static ROOT: cel::Context<'static, 'static> = root();
}

/// Answers `now`, `@u{i}` (a property of the profile) and `@k{i}` (a
/// constant of the page) from the thread's current profile, after the
/// budget's own check (`budget::GAUGE`).
struct Resolver;

static RESOLVER: Resolver = Resolver;

impl cel::context::VariableResolver for Resolver {
    fn resolve<'b>(&'b self, variable: &str) -> Option<cel::common::value::CowVal<'b, 'b>> {
        if let Some(budget) = budget::GAUGE.resolve(variable) {
            return Some(budget);
        }
        let value = CURRENT.with(|c| {
            let c = c.borrow();
            if variable == "now" {
                return c.now.map(|t| cel::Value::Timestamp(t.fixed_offset()));
            }
            let index = |prefix: &str| {
                variable
                    .strip_prefix(prefix)
                    .and_then(|i| i.parse::<usize>().ok())
            };
            if let Some(i) = index("@u") {
                let name = c.names.get(i)?;
                return c.properties.as_ref()?.get(name).map(to_cel);
            }
            if let Some(i) = index("@k") {
                return c.constants.get(i).cloned();
            }
            None
        })?;
        let value: Box<dyn cel::common::value::Val> = value.try_into().ok()?;
        Some(cel::common::value::CowVal::Owned(value))
    }
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

/// `2012-11-20T15:26:17`, with a space for the `T` or a `Z` after it, read
/// by hand: the shape profiles carry most, and chrono's parsers cost more
/// than the rest of a typical `where`.
fn plain_utc(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if !(b.len() == 19 || (b.len() == 20 && b[19] == b'Z')) {
        return None;
    }
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?
        .and_hms_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?)
        .map(|t| t.and_utc())
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
        cel::Value::String(s) => plain_utc(s)
            .or_else(|| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .ok()
            })
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
    ctx.add_function("time", |v: cel::Value| time(&v))
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
    fn a_failing_constant_fails_only_where_it_is_reached() {
        let a = Audience::compile("user.a == 1 && timestamp('not a time') > now").unwrap();
        assert_eq!(a.constants.len(), 1);
        assert_eq!(a.matches(&mut user(json!({"a": 2})), now()), Ok(false));
        assert!(a.matches(&mut user(json!({"a": 1})), now()).is_err());
    }

    #[test]
    fn time_reads_what_profiles_carry() {
        let at = |v: Value| {
            let mut p = user(json!({ "t": v }));
            run("time(user.t) == timestamp('2012-11-20T15:26:17Z')", &mut p)
        };
        for v in [
            json!("2012-11-20T15:26:17"),
            json!("2012-11-20 15:26:17"),
            json!("2012-11-20T15:26:17Z"),
            json!("2012-11-20T16:26:17+01:00"),
            json!("2012-11-20T15:26:17.000"),
            json!(1353425177),
        ] {
            assert_eq!(at(v.clone()), Ok(true), "{v}");
        }
        let mut p = user(json!({ "t": "2012-11-20" }));
        assert_eq!(
            run("time(user.t) == timestamp('2012-11-20T00:00:00Z')", &mut p),
            Ok(true)
        );
        for bad in [
            json!("2012-13-20T15:26:17"),
            json!("yesterday"),
            json!(true),
        ] {
            assert!(at(bad.clone()).is_err(), "{bad}");
        }
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
    fn reads_only_the_properties_it_names_and_works_out_constants_once() {
        let a = Audience::compile("user.a == 1 || user['b c'] == 2 || now - duration('1h') < now")
            .unwrap();
        let User::Named(names) = &*a.user else {
            panic!("{a:?}")
        };
        assert_eq!(names, &["a", "b c"]);
        assert_eq!(a.constants.len(), 1, "{a:?}");
        let all = Audience::compile("size(user) > 2").unwrap();
        assert!(matches!(&*all.user, User::Whole));
        let mut p = user(json!({"x": 1, "y": 2, "z": 3}));
        assert_eq!(all.matches(&mut p, now()), Ok(true));
        let has = Audience::compile("has(user.x) && user.x == 1").unwrap();
        assert!(matches!(&*has.user, User::Whole));
        assert_eq!(has.matches(&mut p, now()), Ok(true));
        // A page: matched, failed, and the rest left past a deadline.
        let mut page = vec![
            user(json!({"a": 1})),
            user(json!({"a": 2})),
            user(json!({"b": 1})),
        ];
        for (i, p) in page.iter_mut().enumerate() {
            p.distinct_id = format!("p{i}");
        }
        let judged = Audience::compile("user.a == 1")
            .unwrap()
            .judge(&mut page, now(), None);
        assert_eq!(judged.matched, ["p0"]);
        assert_eq!(judged.errors, 1);
        assert!(judged.first_error.unwrap().contains("no property a"));
        let past = std::time::Instant::now();
        let judged = Audience::compile("true")
            .unwrap()
            .judge(&mut page, now(), Some(past));
        assert_eq!(
            (judged.matched.len(), judged.stopped_at.as_deref()),
            (1, Some("p0"))
        );
        // Each profile keeps its own data afterwards.
        assert_eq!(page[2].properties.as_ref().unwrap()["b"], 1);
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
            (
                "[1].exists(now, now > 0)",
                12,
                "now names the profile's data",
            ),
        ] {
            let e = Audience::compile(source).unwrap_err();
            assert_eq!(e.column, column, "{source}: {e}");
            assert!(e.message.contains(words), "{source}: {e}");
        }
        let e = run("user.n + 1", &mut user(json!({"n": 1}))).unwrap_err();
        assert!(e.contains("not true or false"), "{e}");
    }
}
