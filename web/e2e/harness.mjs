// What both browser suites (workbench.test.mjs, admin.test.mjs) share: the
// control API of the Go test that started them, numbered steps, and one
// chromium launched as BRIEF.md fixes it.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

export const BASE = process.env.BASE_URL;
export const CONTROL = process.env.CONTROL_URL;
assert.ok(BASE && CONTROL, "BASE_URL and CONTROL_URL are set by the Go test (TestWebBrowser, TestAdminBrowser)");

export const T = 10000; // per-expectation timeout: live updates must arrive well within it

// control calls the Go test's control API (it plays users, agents and the operator).
export async function control(p, body = {}) {
  const r = await fetch(CONTROL + p, { method: "POST", body: JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${p}: ${j.error}`);
  return j;
}
export const say = (user, text, replica) => control("/say", { user, text, replica });
export const sent = (after, user, substr) => control("/sent", { after, user, substr });

let failed = 0;

// step runs one named check; the first failure stops the suite.
export async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n     ${e.stack || e}`);
    throw e;
  }
}

let browser;

// newPage opens a page in a context of its own (its own cookies). Dialogs
// (hx-confirm) are accepted; a page error fails the suite.
export async function newPage(contextOptions = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: "zh-CN", ...contextOptions });
  const page = await ctx.newPage();
  page.on("dialog", (d) => d.accept());
  if (process.env.DEBUG) {
    page.on("console", (m) => console.log("console:", m.text()));
    page.on("request", (r) => console.log("req:", r.method(), r.url()));
  }
  page.on("pageerror", (e) => { console.log("page error:", e.message); failed++; });
  return { ctx, page };
}

export async function expectText(locator, text) {
  await locator.filter({ hasText: text }).first().waitFor({ timeout: T });
}

// run launches chromium, runs the suite's steps and exits non-zero when
// any failed. playwright-core's launch gives chromium a fresh temporary
// profile (--user-data-dir) of its own and removes it on close; it refuses
// the flag.
export async function run(label, steps) {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    await steps();
  } catch {
    // reported by step
  } finally {
    await browser.close();
  }
  if (failed) {
    console.log(`${failed} failed`);
    process.exit(1);
  }
  console.log(`all ${label} passed`);
}
