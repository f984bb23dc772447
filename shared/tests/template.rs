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
    for (queue, function) in [
        ("ApplyQueue", "ApplyFunction"),
        ("CampaignQueue", "CampaignsFunction"),
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
