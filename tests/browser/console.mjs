// The console end to end in headless Chromium against the real binary:
// sign in (a wrong key refused, the right one let in), the webhooks list at
// a phone's width, the test button against a receiver that answers
// `<script>` and `<img onerror>` (shown as text; nothing runs), the status
// toggle, and every page reached. Screenshots go to target/browser/.
// Run by scripts/test.sh: `node tests/browser/console.mjs` after a build.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import http from "node:http";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const binary = process.env.HOOKLINE_BIN || "target/debug/hookline";
const shots = "target/browser";
mkdirSync(shots, { recursive: true });

const hostile = '<script>window.__ran = 1</script><img src=x onerror="window.__ran = 2">';
const receiver = http.createServer((req, res) => {
  req.resume();
  res.writeHead(500, { "content-type": "text/html" });
  res.end(hostile);
});
await new Promise((r) => receiver.listen(0, "127.0.0.1", r));

const key = "browser-admin-key-0123456789";
const server = spawn(binary, ["serve", "--listen", "127.0.0.1:0", "--data-dir", mkdtempSync(join(tmpdir(), "hookline-browser-"))], {
  env: { ...process.env, HOOKLINE_ADMIN_KEY: key, HOOKLINE_OPERATOR_KEY: "browser-operator-key-0123456789", HOOKLINE_ALLOW_PRIVATE_TARGETS: "1", HOOKLINE_LOG: "warn" },
  stdio: ["ignore", "pipe", "inherit"],
});
const base = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("hookline did not start")), 30000);
  server.stdout.on("data", (d) => {
    const m = /listening on (http:\/\/\S+)/.exec(String(d));
    if (m) { clearTimeout(timer); resolve(m[1]); }
  });
});

let browser;
try {
  const made = await fetch(`${base}/v1/webhooks`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "<b>CRM</b> opens", events: ["delivered"], log_response_body: true,
      channel: { type: "web", url: `http://127.0.0.1:${receiver.address().port}/hook` } }),
  });
  assert.equal(made.status, 201);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const failures = [];
  page.on("pageerror", (e) => failures.push(String(e)));
  // A policy violation (an inline script, a trusted-types sink) is a console
  // error; so is a failed load, of which only the wrong key's 401 and the
  // browser's own favicon request are expected.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (401|404)/.test(m.text())) failures.push(m.text());
  });

  await page.goto(`${base}/`);
  await page.screenshot({ path: `${shots}/sign-in.png` });
  // Keyboard only: type the key and press Enter.
  await page.focus("#key");
  await page.keyboard.type("not-a-key-of-anyone-0123");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#sign-in-error:has-text('opens no account')");
  await page.fill("#key", key);
  await page.keyboard.press("Enter");
  await page.waitForSelector("h1:has-text('Webhooks')");
  // Names from other systems are text, not markup.
  await page.waitForSelector("td:has-text('<b>CRM</b> opens')");
  assert.equal(await page.locator("td b").count(), 0);

  // The test button by keyboard.
  await page.focus("button:has-text('Test')");
  await page.keyboard.press("Enter");
  await page.waitForSelector("pre");
  assert.equal(await page.textContent("pre"), hostile);
  assert.match(await page.textContent("p.status"), /failed: 500/);
  // Made into elements, the answer would add an image (its script the
  // policy would stop anyway).
  assert.equal(await page.locator("main img, main script").count(), 0);
  assert.equal(await page.evaluate(() => window.__ran), undefined, "the answer ran in the page");
  // At a phone's width nothing runs off the side.
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), "wider than the phone");
  await page.screenshot({ path: `${shots}/webhooks.png`, fullPage: true });

  await page.focus("button:has-text('Deactivate')");
  await page.keyboard.press("Enter");
  await page.waitForSelector("td.status:text-is('inactive')");
  // Focus stays on the webhook's toggle, now Activate.
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Activate");
  await page.keyboard.press("Enter");
  await page.waitForSelector("td.status:text-is('active')");

  for (const [hash, title] of [["#/triggers", "Triggers"], ["#/campaigns", "Campaigns"], ["#/dead-letters", "Dead letters"]]) {
    await page.click(`nav a[href='${hash}']`);
    await page.waitForSelector(`h1:has-text('${title}')`);
    await page.screenshot({ path: `${shots}/${hash.slice(2)}.png`, fullPage: true });
  }
  // The key is the page's: not in any storage, a cookie or the URL.
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
  assert.equal((await page.context().cookies()).length, 0);
  assert.ok(!page.url().includes(key));
  assert.deepEqual(failures, []);
  console.log(`console: every check passed; screenshots in ${shots}/`);
} finally {
  if (browser) await browser.close();
  server.kill();
  receiver.close();
}
