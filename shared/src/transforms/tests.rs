use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

const MIXMAX: &str =
    "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name";

#[test]
fn mixmax_seed_transform() {
    let t = Transform::compile(MIXMAX).unwrap();
    let out = t
        .apply(&obj(json!({"candidate": {"email": "john@example.com", "first_name": "John", "last_name": "Doe"}})))
        .unwrap();
    assert_eq!(out.email.as_deref(), Some("john@example.com"));
    assert_eq!(out.name.as_deref(), Some("John Doe"));
    assert_eq!(out.first_name, None);
}

#[test]
fn comments_blank_lines_indices_fields_and_numbers() {
    let source = "# Greenhouse\n\n  email = applications.0.candidate.emails[0] # first\nphone_number = phone\nfields.stage = applications.0.stage\nfields.score = score * 2\nfields.tags = tags\n";
    let t = Transform::compile(source).unwrap();
    let out = t
        .apply(&obj(json!({
            "applications": [{"candidate": {"emails": ["a@example.com"]}, "stage": "onsite"}],
            "phone": 12155556677u64, "score": 21, "tags": ["x", "y"]
        })))
        .unwrap();
    assert_eq!(out.email.as_deref(), Some("a@example.com"));
    assert_eq!(out.phone_number.as_deref(), Some("12155556677"));
    assert_eq!(out.fields["stage"], "onsite");
    assert_eq!(out.fields["score"], 42);
    assert_eq!(out.fields["tags"], json!(["x", "y"]));
}

#[test]
fn compile_errors_name_line_and_column() {
    let e =
        Transform::compile("email = candidate.email\nname = candidate.first_name + ").unwrap_err();
    assert_eq!((e.line, e.column), (2, 30), "{e}");
    let e = Transform::compile("email = a.b\nemail = c").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("already set on line 1"), "{e}");
    let e = Transform::compile("# nothing\n\n").unwrap_err();
    assert!(e.message.contains("sets nothing"));
    let e = Transform::compile("email = a.0.b +* 1").unwrap_err();
    assert_eq!((e.line, e.column), (1, 16), "{e}");
    let e = Transform::compile("email = \"unterminated").unwrap_err();
    assert_eq!(e.line, 1);
    assert!(e.to_string().starts_with("line 1, column "), "{e}");
}

#[test]
fn runtime_errors_say_what_is_missing() {
    let t = Transform::compile(MIXMAX).unwrap();
    let e = t
        .apply(&obj(
            json!({"candidate": {"email": "a@example.com", "first_name": "A"}}),
        ))
        .unwrap_err();
    assert_eq!((e.line, e.target.as_str()), (2, "name"));
    assert!(e.message.contains("last_name"), "{e}");
    let e = t.apply(&obj(json!({"person": {}}))).unwrap_err();
    assert!(e.message.contains("candidate"), "{e}");
    let t = Transform::compile("name = a + 1").unwrap();
    assert!(
        t.apply(&obj(json!({"a": "x"}))).is_err(),
        "string + int has no overload"
    );
    let t = Transform::compile("email = flags").unwrap();
    let e = t.apply(&obj(json!({"flags": true}))).unwrap_err();
    assert!(e.message.contains("boolean"), "{e}");
    let t = Transform::compile("email = maybe").unwrap();
    assert_eq!(t.apply(&obj(json!({"maybe": null}))).unwrap().email, None);
}

#[test]
fn cel_functions_work() {
    let t = Transform::compile("name = has(c.nick) ? c.nick : c.first\nfields.n = size(c.first)")
        .unwrap();
    let out = t.apply(&obj(json!({"c": {"first": "Ada"}}))).unwrap();
    assert_eq!(out.name.as_deref(), Some("Ada"));
    assert_eq!(out.fields["n"], 3);
}

#[test]
fn direct_mapping_without_a_transform() {
    let out = direct(&obj(json!({"phone_number": "12155556677", "first_name": "John", "last_name": "Smith", "Integration": "Salesforce"}))).unwrap();
    assert_eq!(out.phone_number.as_deref(), Some("12155556677"));
    assert_eq!(out.first_name.as_deref(), Some("John"));
    assert!(out.fields.is_empty());
    assert!(direct(&obj(json!({"email": ["a"]}))).is_err());
}

#[test]
fn numbers_a_contact_cannot_keep_are_runtime_errors() {
    let t = Transform::compile("email = email\nfields.x = a * b").unwrap();
    let e = t
        .apply(&obj(json!({"email": "a@x.io", "a": 1e100, "b": 1e100})))
        .unwrap_err();
    assert!(
        e.message.contains("1e+200") && e.message.contains("outside"),
        "{}",
        e.message
    );
    let out = t
        .apply(&obj(json!({"email": "a@x.io", "a": 3e60, "b": 2e60})))
        .unwrap();
    assert_eq!(
        out.fields["x"].as_f64().map(|x| (x / 6e120).round()),
        Some(1.0)
    );
}

#[test]
fn list_macros_do_not_nest() {
    let t = Transform::compile(
        "fields.emails = people.map(p, p.email)\nfields.any = tags.exists(t, t == \"vip\")",
    )
    .unwrap();
    let out = t
        .apply(&obj(
            json!({"people": [{"email": "a@x.io"}, {"email": "b@x.io"}], "tags": ["vip"]}),
        ))
        .unwrap();
    assert_eq!(out.fields["emails"], json!(["a@x.io", "b@x.io"]));
    assert_eq!(out.fields["any"], true);
    // A chain runs one macro after the other: allowed.
    let t = Transform::compile("email = e\nfields.vips = people.filter(p, p.vip).map(p, p.email)")
        .unwrap();
    let out = t
        .apply(&obj(json!({"e": "a@x.io", "people": [{"vip": true, "email": "v@x.io"}, {"vip": false, "email": "n@x.io"}]})))
        .unwrap();
    assert_eq!(out.fields["vips"], json!(["v@x.io"]));
    for nested in [
        "fields.x = a.map(i, a.map(j, i + j))",
        "fields.x = a.all(i, b.exists(j, j == i))",
        "fields.x = [a.map(i, i)].map(l, l.filter(v, v > 1))",
        "fields.x = {\"k\": a.map(i, b.map(j, j))}",
    ] {
        let e = Transform::compile(&format!("email = e\n{nested}")).unwrap_err();
        assert_eq!(e.line, 2, "{nested}");
        assert!(
            e.message.contains("inside another"),
            "{nested}: {}",
            e.message
        );
    }
}

#[test]
fn numbers_become_digits_only_when_whole() {
    let phone = |v: Value| direct(&obj(json!({ "phone_number": v }))).map(|c| c.phone_number);
    assert_eq!(
        phone(json!(12155556677u64)).unwrap().as_deref(),
        Some("12155556677")
    );
    assert_eq!(
        phone(json!(12155556677.0)).unwrap().as_deref(),
        Some("12155556677")
    );
    assert_eq!(
        phone(json!(1.2155556677e10)).unwrap().as_deref(),
        Some("12155556677")
    );
    for bad in [json!(12155556677.5), json!(1e300), json!(-0.5)] {
        let e = phone(bad.clone()).unwrap_err();
        assert!(e.message.contains("whole number"), "{bad}: {}", e.message);
    }
}

#[test]
fn leaf_paths_of_a_sample() {
    let paths = leaf_paths(
        &json!({"candidate": {"email": "e", "tags": ["a"], "odd key": 1, "empty": {}}, "n": 1, "1bad": 2}),
    );
    let names: Vec<_> = paths.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "candidate.email",
            "candidate.tags[0]",
            "candidate[\"odd key\"]",
            "candidate.empty",
            "n"
        ]
    );
    // Every path is an expression that reads its own value back.
    let sample = json!({"candidate": {"email": "e", "tags": ["a"], "odd key": 1}});
    for (path, value) in leaf_paths(&sample) {
        let t = Transform::compile(&format!("fields.x = {path}")).unwrap();
        assert_eq!(
            t.apply(sample.as_object().unwrap()).unwrap().fields["x"],
            value,
            "{path}"
        );
    }
}

/// The fast path answers exactly what CEL answers, or leaves the answer to it.
#[test]
fn fast_path_agrees_with_cel() {
    let payloads = [
        json!({"c": {"first": "Ada", "last": "Lovelace", "n": 3, "big": 18446744073709551615u64, "f": 1.5,
                     "tags": ["x", "y"], "nested": {"k": [1, {"deep": "v"}]}, "nil": null, "b": true}}),
        json!({"c": {"first": 7, "last": "Lovelace", "tags": []}}),
        json!({"c": []}),
        json!({"other": 1}),
        json!({"c": {"first": "A", "n": 9223372036854775807i64}}),
    ];
    let expressions = [
        "c.first",
        "c.first + \" \" + c.last",
        "c.tags.0",
        "c.tags[1]",
        "c.tags.5",
        "c['first']",
        "c.nested.k.1.deep",
        "c.nested.k[0]",
        "c.n",
        "c.n + 1",
        "c.big",
        "c.f",
        "c.nil",
        "c.b",
        "c.first + c.n",
        "c.missing",
        "\"lit\"",
        "42",
        "c.nested",
        "c.tags",
        "c.first + \"!\"",
        "c.n + c.n",
    ];
    let mut fast_answers = 0;
    for e in expressions {
        let t = Transform::compile(&format!("fields.x = {e}")).unwrap();
        for p in &payloads {
            let p = p.as_object().unwrap();
            let slow = t.apply_with(p, false).map(|f| f.fields);
            let fast = t.apply_with(p, true).map(|f| f.fields);
            assert_eq!(fast, slow, "{e} on {p:?}");
            if t.assignments[0]
                .fast
                .as_ref()
                .and_then(|f| fast::eval(f, p))
                .is_some()
            {
                fast_answers += 1;
            }
        }
    }
    assert!(
        fast_answers >= 30,
        "the fast path answered only {fast_answers} times"
    );
    assert!(
        Transform::compile(MIXMAX)
            .unwrap()
            .assignments
            .iter()
            .all(|a| a.fast.is_some()),
        "the seed transform is all fast"
    );
}

/// Compiles and evaluates on the transform threads, as the service does.
async fn run(source: &str, payload: Value) -> Result<ContactFields, String> {
    let (t, _) = Transform::compile_bounded(source.to_string())
        .await
        .unwrap()
        .map_err(|e| format!("compile: {e}"))?;
    t.evaluate(&obj(payload))
        .await
        .unwrap()
        .map_err(|e| format!("eval: {e}"))
}

#[tokio::test]
async fn deep_nesting_is_refused_before_the_parser_sees_it() {
    for n in [17, 20, 200, 5000] {
        let source = format!("email = {}a{}", "(".repeat(n), ")".repeat(n));
        let e = Transform::compile(&source).unwrap_err();
        assert_eq!((e.line, e.column), (1, 9 + budget::MAX_NESTING), "{e}");
        assert!(e.message.contains("nest more than 16"), "{e}");
    }
    // Brackets in strings do not count; 16 levels compile and evaluate.
    let ok = format!(
        "email = {}a{} + \"{}\"",
        "(".repeat(16),
        ")".repeat(16),
        "((((((((((((((((((((("
    );
    let out = run(&ok, json!({"a": "x"})).await.unwrap();
    assert_eq!(out.email.as_deref(), Some("x((((((((((((((((((((("));
    // Long runs of unary operators are folded by the parser: they compile
    // and evaluate, on a small stack too.
    let out = run(&format!("fields.x = {}true", "!".repeat(301)), json!({}))
        .await
        .unwrap();
    assert_eq!(out.fields["x"], json!(false));
}

#[tokio::test]
async fn long_chains_and_large_expressions_are_refused_at_compile() {
    for op in [" + ", " * ", " == "] {
        let source = format!("fields.x = {}", vec!["a"; 60].join(op));
        let e = Transform::compile(&source).unwrap_err();
        assert!(e.message.contains("too large"), "{op}: {e}");
    }
    let wide = format!("fields.x = [{}]", vec!["a"; 600].join(", "));
    assert!(
        Transform::compile(&wide)
            .unwrap_err()
            .message
            .contains("too large")
    );
    // A chain within the limits evaluates.
    let source = format!("fields.x = {}", vec!["a"; 40].join(" * "));
    let out = run(&source, json!({"a": 1})).await.unwrap();
    assert_eq!(out.fields["x"], 1);
}

#[tokio::test]
async fn a_quadratic_transform_runs_out_of_memory_budget_not_memory() {
    let a: Vec<Value> = (0..2000).map(|i| json!(i)).collect();
    let started = std::time::Instant::now();
    let e = run("fields.x = a.map(x, a)", json!({"a": a}))
        .await
        .unwrap_err();
    assert!(e.contains("MiB of memory"), "{e}");
    assert!(e.contains("line 1, column 12 (fields.x)"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // The same macro over a small list is fine.
    let out = run("fields.x = a.map(x, a)", json!({"a": [1, 2]}))
        .await
        .unwrap();
    assert_eq!(out.fields["x"], json!([[1, 2], [1, 2]]));
}

#[tokio::test]
async fn a_cpu_heavy_transform_runs_out_of_time() {
    let a: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
    let s = "ab".repeat(100_000);
    let e = run(
        "fields.x = a.exists(x, s.matches('(a|b)*c'))",
        json!({"a": a, "s": s}),
    )
    .await
    .unwrap_err();
    assert!(e.contains("more than 250 ms"), "{e}");
}

#[tokio::test]
async fn metered_macros_answer_as_before() {
    let p = json!({"items": [
        {"email": "a@x.io", "ok": true, "n": 1},
        {"email": "b@x.io", "ok": false, "n": 2},
        {"email": "c@x.io", "ok": true, "n": 3}
    ]});
    let source = "fields.emails = items.map(x, x.email)\n\
                  fields.ok = items.filter(x, x.ok).map(x, x.n)\n\
                  fields.any = items.exists(x, x.n > 2)\n\
                  fields.all = items.all(x, x.n > 0)\n\
                  fields.one = items.exists_one(x, x.n == 2)\n\
                  fields.big = items.map(x, x.n > 1, x.n * 10)";
    let out = run(source, p).await.unwrap();
    assert_eq!(out.fields["emails"], json!(["a@x.io", "b@x.io", "c@x.io"]));
    assert_eq!(out.fields["ok"], json!([1, 3]));
    assert_eq!(out.fields["any"], json!(true));
    assert_eq!(out.fields["all"], json!(true));
    assert_eq!(out.fields["one"], json!(true));
    assert_eq!(out.fields["big"], json!([20, 30]));
}

#[tokio::test]
async fn values_no_contact_can_keep_are_errors_not_dropped() {
    for source in [
        "fields.x = 0.0 / 0.0",
        "fields.x = x * 10.0",
        "fields.x = [x]",
    ] {
        let e = run(source, json!({"x": 1e308})).await;
        match source {
            "fields.x = [x]" => assert!(e.unwrap_err().contains("outside what a contact")),
            _ => assert!(e.unwrap_err().contains("not a finite number"), "{source}"),
        }
    }
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!([deep]);
    }
    let source = format!("fields.x = {}d{}", "[".repeat(12), "]".repeat(12));
    let e = run(&source, json!({"d": deep})).await.unwrap_err();
    assert!(e.contains("nests more than 27 levels"), "{e}");
}

#[test]
fn leaf_paths_are_bounded_in_count_and_bytes() {
    let many: Map<String, Value> = (0..5000).map(|i| (format!("k{i}"), json!(i))).collect();
    let paths = leaf_paths(&Value::Object(many));
    assert_eq!(paths.len(), paths::MAX_PATHS);
    assert_eq!(paths[0].0, "k0");
    // A deep sample with long keys: its paths would grow with depth squared.
    let key = "k".repeat(2000);
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ key.clone(): [deep, 1, 2, 3] });
    }
    let paths = leaf_paths(&json!({ "a": deep }));
    let bytes: usize = paths.iter().map(|(p, _)| p.len()).sum();
    assert!(bytes < 1024 * 1024, "{bytes} bytes of paths");
    assert!(!paths.is_empty());
}

#[tokio::test]
async fn copies_made_without_a_loop_are_stopped_too() {
    // Each `a` copies the list: 400 copies of 100,000 values would be
    // gigabytes; the budget stops it at the lookup that passes 32 MiB.
    let a: Vec<Value> = (0..100_000).map(|i| json!(i)).collect();
    let source = format!("fields.x = [{}]", vec!["a"; 400].join(", "));
    let e = run(&source, json!({"a": a})).await.unwrap_err();
    assert!(e.contains("MiB of memory"), "{e}");
    // The budget is the payload's, not each line's: two lines that each
    // stay under it alone do not together.
    let a: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
    let line = format!("[{}]", ["a"; 3].join(", "));
    let one = format!("fields.x = {line}");
    let r = run(&one, json!({"a": a.clone()})).await;
    assert!(r.is_ok(), "{r:?}");
    let many: String = (0..8).map(|i| format!("fields.x{i} = {line}\n")).collect();
    let e = run(&many, json!({"a": a})).await.unwrap_err();
    assert!(e.contains("MiB of memory"), "{e}");
}

#[tokio::test]
async fn patterns_must_be_literals_of_bounded_size() {
    let e = Transform::compile("fields.x = s.matches(r)").unwrap_err();
    assert!(e.message.contains("string literal"), "{e}");
    let e = Transform::compile("fields.x = matches(s, r)").unwrap_err();
    assert!(e.message.contains("string literal"), "{e}");
    let e = Transform::compile("fields.x = s.matches('(a{1000}){1000}')").unwrap_err();
    assert!(e.message.contains("256 KiB"), "{e}");
    let out = run("fields.x = s.matches('^a+$')", json!({"s": "aaa"}))
        .await
        .unwrap();
    assert_eq!(out.fields["x"], json!(true));
}

#[tokio::test]
async fn the_longest_chains_a_transform_can_hold_parse_on_the_transform_threads() {
    // 16 KiB of one chain: refused by size, after parsing without overflow.
    for chain in [
        vec!["a"; 8100].join("*"),
        format!("a{}", ".b".repeat(8100)),
        format!("a{}", "[0]".repeat(5400)),
    ] {
        let source = format!("fields.x = {chain}");
        let e = Transform::compile_bounded(source)
            .await
            .unwrap()
            .unwrap_err();
        assert!(e.message.contains("too large"), "{e}");
    }
    let e = Transform::compile_bounded(format!("fields.x = {}a", "a ? a : ".repeat(40)))
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.message.contains("nests too deeply"), "{e}");
}

#[test]
fn payload_transforms_build_nested_json_from_dotted_targets() {
    let t = Transform::compile_payload(
        "text = \"Bounce: \" + email\nblocks.0 = [1, 2]\nmeta.source = 'hookline'\nmeta.tags = {'a': event}",
    )
    .unwrap();
    let event = serde_json::json!({"email": "a@example.com", "event": "bounced"});
    let out = t.apply(event.as_object().unwrap()).unwrap().fields;
    assert_eq!(
        serde_json::Value::Object(out),
        serde_json::json!({"text": "Bounce: a@example.com", "blocks": {"0": [1, 2]},
                           "meta": {"source": "hookline", "tags": {"a": "bounced"}}})
    );
    // One target inside another is refused, naming the first line.
    let e = Transform::compile_payload("a = 1\na.b = 2").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (2, "a.b is already set on line 1")
    );
    let e = Transform::compile_payload("a.b = 1\na = 2").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(Transform::compile_payload("a.c = 1\na.b = 2").is_ok());
    let e = Transform::compile_payload("a..b = 1").unwrap_err();
    assert!(e.message.contains("dotted path"), "{e}");
    // Contact transforms keep their targets.
    assert!(Transform::compile("text = email").is_err());
}
