// Starts the real binary for the browser tests and benchmark: a fresh data
// directory, the given admin key, loopback only. Answers its base URL and
// how to stop it.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const binary = process.env.HOOKLINE_BIN || "target/debug/hookline";

export const chromiumOptions = {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
};

export async function start(key, bin = binary, env = {}) {
  const server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--data-dir", mkdtempSync(join(tmpdir(), "hookline-browser-"))], {
    env: { ...process.env, HOOKLINE_ADMIN_KEY: key, HOOKLINE_OPERATOR_KEY: "browser-operator-key-0123456789", HOOKLINE_ALLOW_PRIVATE_TARGETS: "1", HOOKLINE_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("hookline did not start")), 30000);
    server.on("error", reject);
    server.stdout.on("data", (d) => {
      const m = /listening on (http:\/\/\S+)/.exec(String(d));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  return { base, stop: () => server.kill() };
}
