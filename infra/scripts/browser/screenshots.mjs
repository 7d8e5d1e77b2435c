// The README's dashboard screenshots: signs in to a local server started with --demo (BASE_URL)
// and saves one PNG per page into OUT (infra/dashboard/ by dashboard-screenshots.sh): the
// viewport only, at 1100×800 (the instance list, every page of the demo's WhatsApp number, a
// backfill previewed and run to done), plus the Attribution view at phone width (375 px). Fails on a CSP
// refusal, or when a page misses what the demo week put there.
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… OUT=infra/dashboard node infra/scripts/browser/screenshots.mjs
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";
import { ADMIN, BASE, eventually, inBrowser } from "./common.mjs";

const OUT = process.env.OUT || "infra/dashboard";
// The demo's WhatsApp number and one of its contacts with an ad, sends, clicks and a conversion.
const INSTANCE = "106540352242922";
const CONTACT = "5511987650001";
const PAGES = [
  ["instances", "/app/instances", "17841400000000001"],
  ["attribution", `/app/instances/${INSTANCE}/attribution`, "LinkedIn team plan"],
  ["analytics", `/app/instances/${INSTANCE}/analytics`, "tiktok"],
  ["contacts", `/app/instances/${INSTANCE}/contacts`, "Ana Souza"],
  ["contact-panel", `/app/instances/${INSTANCE}/contacts/${CONTACT}`, "New sneakers drop"],
  ["revenue", "/app/revenue?group_by=offer", "aurora-runner"],
];
// The demo's week of spend (a campaign only its spend rows name) against its conversations.
const WEEK_AGO = new Date(Date.now() - 6 * 86400000).toISOString().slice(0, 10);
const ADS = [`/app/ads?group_by=campaign&since=${WEEK_AGO}`, "spring-collection"];

mkdirSync(OUT, { recursive: true });
await inBrowser("dashboard screenshots", "screenshots", async ({ page }) => {
  const save = async (name) => {
    await page.screenshot({ path: `${OUT}/${name}.png` });
    console.log(`saved ${OUT}/${name}.png`);
  };
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.goto(`${BASE}/app/login`);
  await save("login");
  await page.fill("#key", ADMIN);
  await page.click("button[type=submit]");
  await page.waitForURL((url) => url.pathname !== "/app/login");
  for (const [name, path, shown] of PAGES) {
    const response = await page.goto(BASE + path);
    assert.equal(response.status(), 200, path);
    assert.ok((await page.textContent("body")).includes(shown), `${path} shows ${shown}`);
    await save(name);
  }
  // The Ads page whole: its charts, then the table and the import form below them.
  const ads = await page.goto(BASE + ADS[0]);
  assert.equal(ads.status(), 200, ADS[0]);
  assert.ok((await page.textContent("body")).includes(ADS[1]), `${ADS[0]} shows ${ADS[1]}`);
  await page.screenshot({ path: `${OUT}/ads.png`, fullPage: true });
  console.log(`saved ${OUT}/ads.png`);
  // A backfill previewed, then run to done (the demo's own run left nothing to attribute).
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  await page.click("button:has-text(\"Preview\")");
  await page.waitForSelector("#backfill-preview");
  await save("backfill-preview");
  await page.click("button:has-text(\"Run the backfill\")");
  await page.waitForURL(/\/backfill\/[0-9A-Z]{26}$/);
  await eventually("the backfill job", async () => {
    await page.reload();
    return (await page.textContent("#job-status")) === "done";
  });
  await save("backfill-job");
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  await save("attribution-phone");
});
