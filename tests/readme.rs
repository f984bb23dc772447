//! The README's curl lines, run verbatim (but for the port) against the real
//! binary, so the README stays true.

mod support;

use support::Server;

/// The README's "Try it" shell blocks, as one script.
fn try_it_script() -> String {
    let readme = include_str!("../README.md");
    let section = readme.split("### Try it").nth(1).expect("a Try it section");
    let section = section.split("\n## ").next().unwrap();
    let blocks: Vec<&str> = section
        .split("```sh")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2, "two example blocks");
    blocks.concat()
}

#[test]
fn readme_examples_work() {
    let script = try_it_script();
    assert!(script.matches("curl ").count() >= 7, "{script}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("HOOKLINE_ADMIN_KEY", "dev-admin-key-change-me"),
            ("HOOKLINE_OPERATOR_KEY", "dev-operator-key-change-me"),
        ],
    );
    let port = server.base.rsplit(':').next().unwrap().to_string();
    let script = script.replace("localhost:3000", &format!("localhost:{port}"));
    let out = std::process::Command::new("sh")
        .args(["-ec", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("{\"error\":{\"code\""),
        "an error answer: {stdout}"
    );
    // The Mixmax example's contact is in its list, and the request applied.
    assert!(stdout.contains("\"name\":\"John Doe\""), "{stdout}");
    assert!(stdout.contains("\"status\":\"applied\""), "{stdout}");
    // The webhook, listed with the account's usage against its limit, and
    // the event's attempt logged.
    assert!(
        stdout.contains("\"usage\":{\"count\":1,\"limit\":100}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"event\":\"delivered\",\"attempt\":1"),
        "{stdout}"
    );
    // The operator's account, with its first admin key.
    assert!(stdout.contains("\"admin_key\":\"hl_admin_"), "{stdout}");
}
