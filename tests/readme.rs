//! The README's curl lines, run verbatim (but for the port) against the real
//! binary, so the README stays true.

mod support;

use support::Server;

/// The shell commands in the README's "Try it" block, joined across `\` lines.
fn curl_commands() -> Vec<String> {
    let readme = include_str!("../README.md");
    let block = readme.split("### Try it").nth(1).expect("a Try it section");
    let block = block
        .split("```sh")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(String::from)
        .collect()
}

#[test]
fn readme_curl_examples_work() {
    let commands = curl_commands();
    assert!(commands.len() >= 3, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[("HOOKLINE_ADMIN_KEY", "dev-admin-key-change-me")],
    );
    let port = server.base.rsplit(':').next().unwrap().to_string();
    for command in commands {
        let command = command.replace("localhost:3000", &format!("localhost:{port}"));
        let out = std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"));
        assert!(body.get("error").is_none(), "{command}: {body}");
    }
}
