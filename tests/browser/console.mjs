// The console end to end in headless Chromium against the real binary:
// sign in (a wrong key refused, the right one let in); the webhooks list,
// the test button against a receiver that answers `<script>` and
// `<img onerror>` (shown as text; nothing runs) and the status toggle, by
// keyboard; a trigger made from a pasted sample with fields mapped (by
// mouse and by keyboard), a broken transform named at its line and column,
// a request to its URL seen applied in its log; a webhook made with the
// form (a missing URL named at its field), saved again untouched without
// losing its secret, tested, toggled; a campaign whose bad `where` is
// named at its field, renamed without sending `where` again, run (its run
// seen through Refresh) and deleted; a dead letter redriven; every page at
// a phone's width. Screenshots of every page go to target/browser/.
// Run by scripts/test.sh: `node tests/browser/console.mjs` after a build.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdirSync } from "node:fs";
import { start, chromiumOptions } from "./hookline.mjs";

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

/** A full-page screenshot, once nothing runs off the side of the phone. */
async function shot(page, name) {
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= 390, `${name}: ${wide} px wide on a 390 px phone`);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}
// Two quick attempts: an event to a failing receiver is a dead letter at once.
// No scheduler tick during the test: "Run now" is the only run.
const { base, stop } = await start(key, undefined, { HOOKLINE_RETRY_SCHEDULE: "0s,1s", HOOKLINE_SCHEDULER_TICK: "1h" });

let browser;
try {
  const made = await fetch(`${base}/v1/webhooks`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "<b>CRM</b> opens", events: ["delivered"], log_response_body: true,
      channel: { type: "web", url: `http://127.0.0.1:${receiver.address().port}/hook` } }),
  });
  assert.equal(made.status, 201);

  browser = await chromium.launch(chromiumOptions);
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const failures = [];
  page.on("pageerror", (e) => failures.push(String(e)));
  // A module or API path mistyped would be a 404: only the favicon may be.
  page.on("response", (r) => {
    if (r.status() === 404 && !r.url().endsWith("/favicon.ico")) failures.push(`404: ${r.url()}`);
  });
  // A policy violation (an inline script, a trusted-types sink) is a console
  // error; so is a failed load, of which only the wrong key's 401, the
  // invalid forms' 422s and the browser's own favicon request are expected.
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (401|404|422)/.test(m.text())) failures.push(m.text());
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
  await shot(page, "webhooks");

  await page.focus("button:has-text('Deactivate')");
  await page.keyboard.press("Enter");
  await page.waitForSelector("td.status:text-is('inactive')");
  // Focus stays on the webhook's toggle, now Activate.
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Activate");
  await page.keyboard.press("Enter");
  await page.waitForSelector("td.status:text-is('active')");

  // A trigger from a pasted sample and mapped fields.
  const list = await (await fetch(`${base}/v1/lists`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "Candidates" }),
  })).json();
  await page.click("nav a[href='#/triggers']");
  await page.waitForSelector("h1:has-text('Triggers')");
  await shot(page, "triggers");
  await page.click("a:has-text('New trigger')");
  await page.waitForSelector("h1:has-text('New trigger')");
  await shot(page, "trigger-new");
  await page.fill("#f-name", "Greenhouse candidates");
  await page.fill("#f-sample", JSON.stringify({ candidate: { email: "ada@example.com", first_name: "Ada", last_name: "Lovelace" } }));
  await page.click("button:has-text('Read sample')");
  await page.waitForSelector("table.paths code:text-is('candidate.email')");
  // Without a transform the sample has no top-level email: said at the field.
  assert.match(await page.textContent("[data-error-for='transform']"), /email/);
  await page.selectOption("select[aria-label='Map candidate.email to']", "email");
  await page.click("button[aria-label='Map candidate.email']");
  await page.waitForSelector("pre.contact:has-text('ada@example.com')");
  // By keyboard: choose with the arrows, apply with the button.
  await page.focus("select[aria-label='Map candidate.first_name to']");
  for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowDown");
  assert.equal(await page.inputValue("#f-transform"), "email = candidate.email", "a choice is applied only by its button");
  assert.equal(await page.inputValue("select[aria-label='Map candidate.first_name to']"), "first_name");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Enter");
  await page.waitForSelector(`pre.contact:has-text('"first_name": "Ada"')`);
  // The keyboard is back on the row's choice.
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Map candidate.first_name to");
  assert.equal(await page.inputValue("#f-transform"), "email = candidate.email\nfirst_name = candidate.first_name");
  // A broken line: the error names its line and column, next to the field.
  await page.fill("#f-transform", "email = candidate.email\nname = candidate.(");
  await page.click("button:has-text('Read sample')");
  await page.waitForSelector("[data-error-for='transform']:has-text('line 2, column')");
  assert.equal(await page.getAttribute("#f-transform", "aria-invalid"), "true");
  await page.fill("#f-transform", "email = candidate.email\nname = candidate.first_name + \" \" + candidate.last_name");
  await page.click("button:has-text('Add action')");
  await page.fill("input[aria-label='List id']", list.id);
  await page.click("button:has-text('Create trigger')");
  const url = await page.textContent(".notice code");
  assert.match(url, /\/hooks\/trg_/);
  // A request to its URL shows in the log, applied, through the log's own
  // Refresh (the page is not reloaded: the notice with the URL stays).
  const posted = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ candidate: { email: "grace@example.com", first_name: "Grace", last_name: "Hopper" } }) });
  assert.equal(posted.status, 200);
  const { request_id } = await posted.json();
  for (let i = 0; ; i++) {
    await page.click("button[aria-label='Refresh requests']");
    await page.waitForSelector("h2:has-text('Requests') >> xpath=../following-sibling::div[not(@aria-busy)]");
    if (await page.locator(`tr[data-request='${request_id}'] td:text-is('applied')`).count()) break;
    assert.ok(i < 50, "the request never showed as applied");
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(await page.textContent(".notice code"), url);
  assert.equal(await page.textContent(`tr[data-request='${request_id}'] td[data-label='Contact']`), "grace@example.com");
  await shot(page, "trigger-requests");
  // A new API key, once confirmed: shown once, said in place, the
  // keyboard still on the button, the form as typed.
  await page.fill("#f-name", "Greenhouse (typed, not saved)");
  page.once("dialog", (d) => d.accept());
  await page.focus("button:has-text('Rotate API key')");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".notice:has-text('API key (shown this once)')");
  await page.waitForSelector("p:has-text('requires its API key')");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Rotate API key");
  assert.equal(await page.inputValue("#f-name"), "Greenhouse (typed, not saved)");
  assert.equal(await page.isChecked("#f-require-api-key"), true);
  const keyed = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
  assert.equal(keyed.status, 401, "the trigger requires its key now");

  // A webhook made with the form: a missing URL is named at its field.
  await page.click("nav a[href='#/webhooks']");
  await page.click("a:has-text('New webhook')");
  await page.waitForSelector("h1:has-text('New webhook')");
  await shot(page, "webhook-new");
  await page.fill("#f-name", "Bounces to CRM");
  await page.click("button:has-text('Create webhook')");
  await page.waitForSelector("[data-error-for='channel.url']:has-text('required')");
  await page.fill("#f-channel-url", `http://127.0.0.1:${receiver.address().port}/bounces`);
  await page.check("[data-event='bounced']");
  await page.fill("#f-filters-sending-domain", "mail.example.com\nnews, example");
  await page.fill("#f-channel-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  await page.click("button:has-text('Create webhook')");
  await page.waitForSelector("h1:has-text('Bounces to CRM')");
  await page.waitForSelector("p.summary:has-text('0 succeeded, 0 failed')");
  const saved = await (await fetch(`${base}/v1/webhooks?limit=200`, { headers: { Authorization: `Bearer ${key}` } })).json();
  const bounces = saved.data.find((w) => w.name === "Bounces to CRM");
  assert.deepEqual(bounces.events.sort(), ["bounced", "delivered"]);
  assert.deepEqual(bounces.filters.sending_domain, ["mail.example.com", "news, example"]);
  assert.equal(bounces.channel.signed, true);
  // Its URL changed, the secret left blank: the channel is sent without
  // it, and the secret, never shown, is kept.
  const patches = [];
  page.on("request", (r) => {
    if (r.method() === "PATCH") patches.push(JSON.parse(r.postData()));
  });
  await page.fill("#f-channel-url", `http://127.0.0.1:${receiver.address().port}/bounces/v2`);
  await page.click("button:has-text('Save')");
  await page.waitForSelector("p.ok:has-text('Saved.')");
  assert.equal(patches.length, 1);
  assert.deepEqual(Object.keys(patches[0]), ["channel"], "only what changed is sent");
  assert.ok(!("secret" in patches[0].channel), JSON.stringify(patches[0]));
  const again = await (await fetch(`${base}/v1/webhooks/${bounces.id}`, { headers: { Authorization: `Bearer ${key}` } })).json();
  assert.equal(again.channel.signed, true);
  assert.deepEqual(again.filters.sending_domain, ["mail.example.com", "news, example"]);
  await page.click("button:has-text('Test')");
  await page.waitForSelector("p.status:has-text('failed: 500')");
  // The attempts load again with the test among them (the chart leaves
  // tests out), its answer as text.
  await page.waitForSelector("td[data-label='Event']:has-text('(test)')");
  await page.click("td[data-label='Body'] summary");
  assert.equal(await page.textContent("td[data-label='Body'] pre"), hostile);
  assert.equal(await page.locator("main img, main script").count(), 0);
  await page.click("button:has-text('Deactivate')");
  await page.waitForSelector("span.status:has-text('inactive')");
  await shot(page, "webhook");

  // A campaign: an invalid `where` is named at its field.
  await page.click("nav a[href='#/campaigns']");
  await page.click("a:has-text('New campaign')");
  await page.waitForSelector("h1:has-text('New campaign')");
  await shot(page, "campaign-new");
  await page.fill("#f-name", "Win back");
  await page.fill("#f-url", `http://127.0.0.1:${receiver.address().port}/mixpanel`);
  await page.fill("#f-where", "user.plan ==");
  await page.click("button:has-text('Create campaign')");
  await page.waitForSelector("[data-error-for='where']:not(:empty)");
  await page.fill("#f-where", "user.plan == 'pro'");
  await page.click("button:has-text('Create campaign')");
  await page.waitForSelector("h1:has-text('Win back')");
  await page.waitForSelector("h2:has-text('Runs')");
  // Renamed: only the name is sent (`where` or the schedule sent again
  // would count as changed: new criteria, weeks counted from now).
  await page.fill("#f-name", "Win back (pro)");
  await page.click("button:has-text('Save')");
  await page.waitForSelector("h1:has-text('Win back (pro)')");
  const renamed = patches.at(-1);
  assert.deepEqual(renamed, { name: "Win back (pro)" });
  // Run now: the run shows under Runs without leaving the page.
  await page.click("button:has-text('Run now')");
  await page.waitForSelector("p.ok:has-text('Run started')");
  await page.waitForSelector("h2:has-text('Runs') >> xpath=../following-sibling::div//td[@data-label='Matched']");
  await shot(page, "campaign");
  // Deleted, once confirmed: back on the list, which says so.
  page.once("dialog", (d) => d.accept());
  await page.click("button:has-text('Delete')");
  await page.waitForSelector("h1:has-text('Campaigns')");
  await page.waitForSelector("p.ok:has-text('Deleted the campaign Win back (pro).')");
  assert.equal(await page.locator("td a:has-text('Win back')").count(), 0);
  await shot(page, "campaigns");

  // A dead letter: an event the failing receiver never takes, redriven.
  const published = await fetch(`${base}/v1/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ event: "delivered", timestamp: new Date().toISOString(), email: "ada@example.com", message_id: "m-1" }),
  });
  assert.equal(published.status, 202);
  await page.click("nav a[href='#/dead-letters']");
  for (let i = 0; ; i++) {
    await page.waitForSelector("h1:has-text('Dead letters')");
    if (await page.locator("td[data-label='Reason']").count()) break;
    assert.ok(i < 100, "no dead letter came");
    await new Promise((r) => setTimeout(r, 200));
    await page.evaluate(() => window.dispatchEvent(new HashChangeEvent("hashchange")));
  }
  await shot(page, "dead-letters");
  await page.click("button:has-text('Redrive all')");
  await page.waitForSelector("p.ok:has-text('Redrive started')");

  // The key is the page's: not in any storage, a cookie or the URL.
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
  assert.equal((await page.context().cookies()).length, 0);
  assert.ok(!page.url().includes(key));
  assert.deepEqual(failures, []);
  console.log(`console: every check passed; screenshots in ${shots}/`);
} finally {
  if (browser) await browser.close();
  stop();
  receiver.close();
}
