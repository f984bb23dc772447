// The console's first view, measured in headless Chromium on loopback:
// bytes transferred (the page, its modules and stylesheet, headers
// included) and time to interactive (navigation start to the end of
// app.js's first run, when the sign-in form takes a key), each in a fresh
// browser context (a cold cache). The baseline, measured in the same run
// and the same way: the server's smallest answer (`/health`), navigation
// start to its load. Prints medians and 90th percentiles; targets: under
// 100 KB and under 300 ms.
// `node tests/browser/bench.mjs` (HOOKLINE_BIN picks the binary; release
// for figures worth quoting), after `npm ci` in tests/browser.
import { chromium } from "playwright-core";
import { start, chromiumOptions } from "./hookline.mjs";

const runs = Number(process.env.BENCH_RUNS || 20);
const { base, stop } = await start("bench-admin-key-0123456789");
const browser = await chromium.launch(chromiumOptions);

async function measure(path, done) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}${path}`, { waitUntil: "load" });
  const figures = await page.evaluate(done);
  await context.close();
  return figures;
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p90: at(0.9) };
}

try {
  const consoleRuns = [];
  const baseline = [];
  for (let i = 0; i < runs; i++) {
    consoleRuns.push(await measure("/", async () => {
      const giveUp = performance.now() + 10000;
      while (!performance.getEntriesByName("hookline-interactive").length) {
        if (performance.now() > giveUp) throw new Error("app.js never marked itself interactive");
        await new Promise((r) => setTimeout(r, 1));
      }
      const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
      return {
        ms: performance.getEntriesByName("hookline-interactive")[0].startTime,
        bytes: entries.reduce((n, e) => n + e.transferSize, 0),
        files: entries.length,
      };
    }));
    baseline.push(await measure("/health", () => ({ ms: performance.getEntriesByType("navigation")[0].loadEventEnd })));
  }
  const tti = stats(consoleRuns.map((r) => r.ms));
  const health = stats(baseline.map((r) => r.ms));
  const bytes = consoleRuns[0].bytes;
  console.log(`console first view: ${bytes} bytes in ${consoleRuns[0].files} files (${(bytes / 1024).toFixed(1)} KB; target < 100 KB)`);
  console.log(`time to interactive: median ${tti.median.toFixed(1)} ms, p90 ${tti.p90.toFixed(1)} ms (target < 300 ms); ${runs} cold loads`);
  console.log(`baseline /health load: median ${health.median.toFixed(1)} ms, p90 ${health.p90.toFixed(1)} ms`);
  console.log(`ratio to baseline (median): ${(tti.median / health.median).toFixed(2)}x`);
} finally {
  await browser.close();
  stop();
}
