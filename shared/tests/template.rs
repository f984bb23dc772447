//! `template.yaml` agrees with the code it deploys (cfn-lint checks the rest).

use hookline::platform::APPLY_MAX_RECEIVES;

const TEMPLATE: &str = include_str!("../../template.yaml");

/// The lines of one top-level resource (indented two spaces in `Resources`).
fn resource(name: &str) -> Vec<&'static str> {
    let mut lines = TEMPLATE.lines().skip_while(|l| *l != format!("  {name}:"));
    assert!(lines.next().is_some(), "resource {name} in template.yaml");
    lines
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .collect()
}

/// The number after `key:` in one resource.
fn number_in(name: &str, key: &str) -> u64 {
    let line = resource(name)
        .into_iter()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in {name}"));
    let value = line
        .split_once(':')
        .unwrap()
        .1
        .split('#')
        .next()
        .unwrap()
        .trim();
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {name} is not a number: {value}"))
}

#[test]
fn queue_settings_match_the_code() {
    assert_eq!(
        number_in("ApplyQueue", "maxReceiveCount"),
        APPLY_MAX_RECEIVES as u64
    );
    assert_eq!(
        number_in("DeliveryQueue", "maxReceiveCount"),
        hookline::platform::DELIVERY_MAX_RECEIVES as u64
    );
    assert_eq!(
        number_in("CampaignQueue", "maxReceiveCount"),
        hookline::platform::CAMPAIGN_MAX_RECEIVES as u64
    );
    // Every queue a function reads, its dead-letter queues too.
    for (queue, function) in [
        ("ApplyQueue", "ApplyFunction"),
        ("ApplyDeadLetterQueue", "ApplyFunction"),
        ("DeliveryQueue", "DeliverFunction"),
        ("DeliveryDeadLetterQueue", "DeliverFunction"),
        ("CampaignQueue", "CampaignsFunction"),
        ("CampaignDeadLetterQueue", "CampaignsFunction"),
    ] {
        let visibility = number_in(queue, "VisibilityTimeout");
        let timeout = number_in(function, "Timeout");
        assert!(
            visibility >= 6 * timeout,
            "{queue}: visibility {visibility}s < 6 x {function}'s timeout {timeout}s"
        );
    }
}

#[test]
fn every_function_binary_exists_and_the_environment_is_complete() {
    for (binary, krate) in [
        ("ingest", "ingest"),
        ("admin", "admin"),
        ("apply", "apply"),
        ("deliver", "deliver"),
        ("campaigns", "campaigns"),
    ] {
        assert!(
            TEMPLATE.contains(&format!("Binary: {binary}\n")),
            "template builds {binary}"
        );
        let manifest = std::fs::read_to_string(format!(
            "{}/../functions/{krate}/Cargo.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "functions/{krate} has a binary {binary}"
        );
    }
    for var in [
        "HOOKLINE_TABLE",
        "HOOKLINE_APPLY_QUEUE_URL",
        "HOOKLINE_APPLY_DLQ_URL",
        "HOOKLINE_DELIVERY_QUEUE_URL",
        "HOOKLINE_DELIVERY_DLQ_URL",
        "HOOKLINE_CAMPAIGN_QUEUE_URL",
        "HOOKLINE_CAMPAIGN_DLQ_URL",
        "HOOKLINE_ADMIN_KEY_SECRET",
        "HOOKLINE_OPERATOR_KEY_SECRET",
    ] {
        assert!(
            TEMPLATE.contains(&format!("{var}: ")),
            "template sets {var}"
        );
        let read = |path: &str| {
            std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let used = read("src/adapters/aws/mod.rs").contains(var)
            || read("../functions/admin/src/main.rs").contains(var.trim_end_matches("_SECRET"));
        assert!(used, "{var} is read by the code");
    }
    // The keys reach no function's environment, only their secrets' ARNs.
    for key in ["HOOKLINE_ADMIN_KEY: ", "HOOKLINE_OPERATOR_KEY: "] {
        assert!(!TEMPLATE.contains(key), "{key} in plain configuration");
    }
    for secret in ["AdminKeySecret", "OperatorKeySecret"] {
        assert!(
            resource(secret)
                .iter()
                .any(|l| l.contains("AWS::SecretsManager::Secret")),
            "{secret} is a secret"
        );
    }
}

/// A parameter's `AllowedPattern` (single-quoted in the template).
fn allowed_pattern(parameter: &str) -> regex::Regex {
    let mut lines = TEMPLATE
        .lines()
        .skip_while(|l| *l != format!("  {parameter}:"));
    assert!(lines.next().is_some(), "parameter {parameter}");
    let line = lines
        .take_while(|l| l.starts_with("    "))
        .find(|l| l.trim_start().starts_with("AllowedPattern:"))
        .unwrap_or_else(|| panic!("{parameter} has an AllowedPattern"));
    let quoted = line.split_once(':').unwrap().1.trim();
    let pattern = quoted.trim_matches('\'').replace("''", "'");
    regex::Regex::new(&pattern).unwrap()
}

/// A deploy with a parameter the code would refuse fails at once, not at
/// every function's start: the parameters' patterns agree with the code.
#[test]
fn parameters_are_checked_as_the_code_checks_them() {
    let schedule = allowed_pattern("RetrySchedule");
    for text in [
        "0s,5s,5m,30m,2h,5h,10h,10h",
        "0s, 5s , 1d",
        "500ms",
        // At most 30 days a step, in each unit.
        "30d",
        "31d",
        "720h",
        "721h",
        "43200m",
        "43201m",
        "2592000s",
        "2592001s",
        "2592000000ms",
        "2592000001ms",
        "999999999d",
        "99999999999999999999s",
        "",
        "5",
        "5x",
        "5s,",
        ",5s",
        "5s,,5m",
        "-5s",
        "5 s",
        "1.5h",
    ] {
        assert_eq!(
            schedule.is_match(text),
            hookline::config::parse_schedule(text).is_ok(),
            "RetrySchedule {text:?}"
        );
    }
    for parameter in ["AdminKey", "OperatorKey"] {
        let key = allowed_pattern(parameter);
        assert!(key.is_match("hl_0123456789abcdef0123"));
        assert!(key.is_match("a key with spaces inside"));
        // A key padded by a copy and paste would be trimmed by the code,
        // and no longer be the key the deployer holds.
        // Nor is a key an Authorization header cannot carry.
        for padded in [
            " hl_0123456789abcdef",
            "hl_0123456789abcdef\n",
            "hl_0123456789abcdef ",
            "hl_0123456789abcdef\u{a0}",
            "hl_0123456789abcdéf",
        ] {
            assert!(!key.is_match(padded), "{parameter} {padded:?}");
        }
        let min = number_in_parameter(parameter, "MinLength");
        assert_eq!(min, hookline::accounts::MIN_CONFIGURED_KEY as u64);
    }
}

fn number_in_parameter(parameter: &str, key: &str) -> u64 {
    let mut lines = TEMPLATE
        .lines()
        .skip_while(|l| *l != format!("  {parameter}:"));
    lines.next();
    lines
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} of {parameter}"))
        .trim()
        .parse()
        .unwrap()
}

/// Each function's role grants its own statements only (no managed
/// policy), and no DynamoDB action the adapter never calls.
#[test]
fn roles_grant_only_what_the_code_uses() {
    assert!(!TEMPLATE.contains("ManagedPolicyArns"), "no managed policy");
    for f in ["Ingest", "Admin", "Apply", "Deliver", "Campaigns"] {
        let function = resource(&format!("{f}Function"));
        assert!(
            !function.iter().any(|l| l.trim() == "Policies:"),
            "{f}Function: no SAM policy (it would add a role with managed policies)"
        );
        assert!(
            function
                .iter()
                .any(|l| l.trim() == format!("Role: !GetAtt {f}Role.Arn")),
            "{f}Function has its own role"
        );
        assert!(
            function
                .iter()
                .any(|l| l.trim() == format!("LogGroup: !Ref {f}Logs")),
            "{f}Function logs to its group"
        );
        assert!(
            resource(&format!("{f}Logs"))
                .iter()
                .any(|l| l.trim() == "RetentionInDays: !Ref LogRetentionDays"),
            "{f}Logs is kept for the retention"
        );
    }
    let adapter = include_str!("../src/adapters/aws/dynamo.rs");
    let called = |call: &str| adapter.contains(&format!(".{call}()"));
    // Every `dynamodb:` action named, in lists written either way.
    let granted = regex::Regex::new(r"dynamodb:([A-Za-z]+)").unwrap();
    let mut seen = 0;
    for action in TEMPLATE
        .lines()
        .flat_map(|l| granted.captures_iter(l).map(|c| c.get(1).unwrap().as_str()))
    {
        seen += 1;
        // TransactWriteItems is granted by the actions of its parts:
        // updates and deletes.
        let used = match action {
            "GetItem" => called("get_item"),
            "Query" => called("query"),
            "UpdateItem" => called("update_item"),
            "DeleteItem" => called("delete_item"),
            _ => false,
        };
        assert!(
            used,
            "dynamodb:{action} is granted but the adapter never calls it"
        );
    }
    // Ingest's three, written inline, and four for each of the others.
    assert!(seen >= 3 + 4 * 4, "{seen} grants read");
    for unused in [
        ".put_item()",
        ".condition_check(",
        ".scan()",
        ".batch_write_item()",
    ] {
        assert!(
            !adapter.contains(unused),
            "the adapter calls {unused}: grant it"
        );
    }
}

/// Work a function queues for itself is allowed to loop; the schedules'
/// names are CloudFormation's (two stacks in one account), and fire on
/// the minute.
#[test]
fn requeuing_functions_may_loop_and_schedules_have_their_own_names() {
    for f in ["ApplyFunction", "DeliverFunction", "CampaignsFunction"] {
        assert!(
            resource(f)
                .iter()
                .any(|l| l.trim() == "RecursiveLoop: Allow"),
            "{f} requeues its own work"
        );
    }
    for f in ["DeliverFunction", "CampaignsFunction"] {
        let lines = resource(f);
        assert!(lines.iter().any(|l| l.trim() == "Type: ScheduleV2"));
        assert!(lines.iter().any(|l| l.trim() == "OmitName: true"), "{f}");
        assert!(
            lines
                .iter()
                .any(|l| l.trim() == "FlexibleTimeWindow: {Mode: \"OFF\"}"),
            "{f}"
        );
    }
    assert!(
        resource("Table")
            .iter()
            .any(|l| l.trim() == "DeletionProtectionEnabled: true")
    );
    assert!(
        resource("HttpApi")
            .iter()
            .any(|l| l.contains("ThrottlingRateLimit"))
    );
    // The alarm on work kept as dead letters counts the log line the code writes.
    assert!(TEMPLATE.contains(r#"FilterPattern: '"dead letter kept"'"#));
    assert!(include_str!("../src/work.rs").contains(r#""dead letter kept""#));
}
