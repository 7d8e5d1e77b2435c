// The dashboard's Ads page in headless Chromium (Debian's), driven by playwright-core, against a
// running local server (BASE_URL): a Google Ads export imported through the page's form (a real
// multipart upload), then the page's table checked row by row against GET /reports/ads; no CSP
// refusal, no sideways scroll at 375 px. Saves screenshots under SCREENSHOTS.
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… node infra/scripts/browser/ads.test.mjs
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ADMIN, BASE, api, inBrowser } from "./common.mjs";

const EXPORT = fileURLToPath(new URL("../../../tests/fixtures/spend/google_ads_campaign_report.csv", import.meta.url));
const WEEK = "since=2026-11-24&until=2026-11-30";

await inBrowser("ads", "dashboard", async ({ page, shot }) => {
  await page.goto(`${BASE}/app/login`);
  await page.fill("#key", ADMIN);
  await page.click("button[type=submit]");
  await page.waitForSelector("#switch-instance");
  await page.goto(`${BASE}/app/revenue`);
  await page.click("nav >> text=Ads");
  await page.waitForURL(/\/app\/ads/);

  await page.selectOption("#platform", "google");
  await page.setInputFiles("#file", EXPORT);
  await page.click("button:has-text('Import')");
  await page.waitForSelector("[data-import]");
  assert.equal(await page.getAttribute("[data-import]", "data-import"), "done");
  const imported = Number(await page.textContent("[data-imported]"));
  const replaced = Number(await page.textContent("[data-replaced]"));
  assert.equal(imported + replaced, 4, "the export's four day rows");
  assert.match(await page.textContent("[data-skipped]"), /Line 8: a total row/);
  await shot("ads-imported");
  console.log("ok - the import form stores the export and lists the Total line it skipped");

  await page.goto(`${BASE}/app/ads?group_by=campaign&${WEEK}`);
  const report = (await api("GET", `/reports/ads?group_by=campaign&${WEEK}`)).body;
  const expected = [...report.rows, ...report.totals].map((row) =>
    [`${row.key} ${row.currency ?? "—"}`, row.spend, String(row.conversations)]);
  const shown = await page.$$eval("tr[data-row]", (rows) => rows.map((row) => [
    row.getAttribute("data-row"),
    row.querySelector("[data-spend]").textContent,
    row.querySelector("[data-conversations]").textContent,
  ]));
  assert.deepEqual(shown, expected);
  assert.ok(expected.some(([key, spend]) => key === "total USD" && spend === "2512.85"), JSON.stringify(report));
  assert.ok(await page.$("[data-chart=spend-USD] rect.spend-bar"), "a spend bar");
  await shot("ads");
  console.log("ok - the Ads table is GET /reports/ads's, row by row");

  await page.setViewportSize({ width: 375, height: 800 });
  await shot("ads-phone");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `the Ads page scrolls sideways at phone width (${width}px)`);
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.goto(`${BASE}/app/ads?group_by=colour`);
  assert.match(await page.textContent("[role=alert]"), /group_by: must be one of/);
  console.log("ok - a bad group_by shows the API's message on a page");
});
