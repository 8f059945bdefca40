// End-to-end check of the dashboard in real headless Chromium (Debian's), driven by
// playwright-core: log in, open every view on a seeded store, filter from a top-N panel,
// drill down into a client, mark a false positive, find it in the audit log; screenshots
// of every view in the light and dark themes go to $JA4_E2E_OUT.
// Usage: node dashboard.e2e.mjs BASE_URL USER PASSWORD
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(process.env.JA4_NODE_MODULES + "/");
const { chromium } = require("playwright-core");

const [base, user, password] = process.argv.slice(2);
const out = process.env.JA4_E2E_OUT || join(tmpdir(), "ja4-e2e");
mkdirSync(out, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "ja4-chromium-"));

function check(cond, msg) { if (!cond) throw new Error("check failed: " + msg); console.log("ok -", msg); }

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1440, height: 1000 },
});
const page = ctx.pages()[0] || await ctx.newPage();
const errors = [];
page.on("pageerror", e => errors.push(String(e)));
// The session probe before login answers 401 (and the wrong password on purpose): expected.
page.on("console", m => { if (m.type() === "error" && !/status of 401/.test(m.text())) errors.push(m.text()); });
page.on("dialog", d => d.accept("looks like a real shopper"));

try {
  await page.goto(base + "/");
  await page.waitForSelector("#login:not([hidden])");
  await page.fill("#login-user", user);
  await page.fill("#login-password", "wrong-password");
  await page.click("#login-submit");
  await page.waitForSelector("#login-error:not([hidden])");
  check(/wrong/i.test(await page.textContent("#login-error")), "a wrong password is refused");
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("#top:not([hidden])");
  check((await page.textContent("#who")).includes(user), "logged in");

  const shots = async (name) => {
    for (const theme of ["light", "dark"]) {
      await page.evaluate(t => { document.documentElement.dataset.theme = t; }, theme);
      await page.screenshot({ path: join(out, `${name}-${theme}.png`), fullPage: true });
    }
    await page.evaluate(() => { document.documentElement.dataset.theme = "light"; });
  };
  const open = async (hash, ready) => {
    await page.goto(base + "/#/" + hash);
    try {
      await page.waitForSelector(ready, { timeout: 30000 });
    } catch (e) {
      await page.screenshot({ path: join(out, "failure.png"), fullPage: true });
      throw new Error(`${hash}: ${e.message}\nview: ${(await page.textContent("#view")).slice(0, 500)}`);
    }
    await page.waitForSelector("#view .loading", { state: "detached", timeout: 30000 });
  };

  await open("overview?range=24h", "#chart-traffic svg");
  check(await page.locator("#chart-traffic rect").count() > 10, "overview chart has bars");
  check(await page.locator("#top-ja4 tr").count() > 2, "top JA4 panel has rows");
  check(await page.locator(".kpi").count() >= 6, "overview totals");
  await shots("overview");

  // Filter from a top-N panel: the chip appears, the URL carries it, the totals shrink.
  const before = await page.textContent(".kpi .value");
  await page.locator("#top-country tr.toprow").first().click();
  await page.waitForSelector(".chip");
  await page.waitForSelector("#view .loading", { state: "detached", timeout: 30000 });
  check(page.url().includes("f=country"), "filter is in the URL (deep link)");
  const after = await page.textContent(".kpi .value");
  check(after !== before, `filtered totals differ (${before} -> ${after})`);
  await shots("overview-filtered");

  await open("detections?range=24h", "table tbody tr");
  check(await page.locator("tbody tr").count() > 1, "detections listed");
  await page.locator("th", { hasText: "Score" }).click();
  await page.waitForURL(/sort=score/);
  await shots("detections");

  await open("scores?range=24h", "table tbody tr");
  await shots("scores");
  await open("campaigns?range=24h", "table tbody tr");
  await shots("campaigns");
  await page.locator("tbody tr td:first-child a").first().click();
  await page.waitForSelector("h1:has-text('Campaign #')");
  await page.waitForSelector("#view .loading", { state: "detached", timeout: 30000 });
  await shots("campaign");

  await open("mitigation?range=24h", "#chart-mitigation svg");
  check(await page.locator("#chart-mitigation rect").count() > 10, "mitigation chart has bars");
  check(/Most mitigated clients/.test(await page.textContent("#view")), "mitigation view lists clients");
  check(await page.locator("#view table").count() >= 4, "mitigation tables: actions, reasons, clients, JA4s");
  await shots("mitigation");

  await open("fingerprint?range=24h&kind=ja4&value=t13d1516h2_8daaf6152771_02713d6af862", ".kpi");
  await shots("fingerprint");

  // Drill down into a client from the detections, mark it a false positive.
  // A scraper that makes GET requests (its reasons name its tool): the detections of one
  // scoring run share their time, so "the first row" is any client, some without a GET.
  await open("detections?range=24h&sort=hits&dir=desc", "table tbody tr");
  const scraper = page.locator("tbody tr", { hasText: "python-requests" }).first();
  const ip = (await scraper.locator("td:nth-child(4) a").textContent()).trim();
  await scraper.locator("td:nth-child(4) a").click();
  await page.waitForSelector("h1:has-text('Client')");
  await page.waitForSelector("table");
  await page.waitForSelector("#view .loading", { state: "detached", timeout: 30000 });
  check(page.url().includes("ip=" + ip), "client page for " + ip);
  await page.locator("tbody tr", { hasText: "GET" }).first().click();
  await page.waitForSelector("tr.detail pre");
  check((await page.textContent("tr.detail pre")).includes("Header order"), "raw request expands to its headers");
  await shots("client");
  await page.locator("button", { hasText: "Mark false positive" }).first().click();
  await page.waitForSelector(".toast");
  check((await page.textContent(".toast")).includes("false positive"), "marked as false positive");

  await open("audit?range=1h", "table tbody tr");
  const audit = await page.textContent("table");
  check(audit.includes("label") && audit.includes("ip:" + ip), "the mark is in the audit log");
  check(audit.includes("login_failed"), "the failed login is in the audit log");
  await shots("audit");

  await open("admin", "table");
  await shots("admin");

  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])");
  check(true, "logged out");
  check(errors.length === 0, "no script errors or CSP violations: " + errors.join(" | "));
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
