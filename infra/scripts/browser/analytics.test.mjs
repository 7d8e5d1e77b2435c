// The dashboard's Analytics and Revenue pages in headless Chromium (Debian's), driven by
// playwright-core, against a running local server (BASE_URL): numbers checked against the stats
// and report APIs, the platform colour class on the bars, no CSP refusal, no sideways scroll at
// 375 px. Saves screenshots under SCREENSHOTS (default .tools/screenshots/).
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… META_APP_SECRET=… POSTBACK_TOKEN=… node infra/scripts/browser/analytics.test.mjs
import assert from "node:assert/strict";
import { ADMIN, BASE, api, deliverText, eventually, inBrowser } from "./common.mjs";

const POSTBACK_TOKEN = process.env.POSTBACK_TOKEN;
// Its own instance, so the other browser tests' contacts do not count here.
const INSTANCE = "105555555555555";

// Contacts: one a rule matches, one it does not.
const created = await api("POST", `/instances/${INSTANCE}/rules`, {
  name: "TikTok", platform: "tiktok", match: { kind: "contains", pattern: "tiktok" },
});
assert.equal(created.status, 201, JSON.stringify(created.body));
await deliverText(INSTANCE, "5511900000101", "Analytics Visitor", "wamid.an-1", "tiktok sent me");
await deliverText(INSTANCE, "5511900000102", "Analytics Visitor", "wamid.an-2", "hello");
const stats = await eventually("the matcher", async () => {
  const seen = await api("GET", `/instances/${INSTANCE}/stats?days=30`);
  return seen.body.click_to_chat_contacts === 2 ? seen.body : null;
});

// Revenue: an offer, a send, a person's click on its link and a conversion.
const offer = await api("POST", "/offers", { offer_id: "browser-offer", name: "Browser offer",
  destination_url: "https://shop.example/p?aff={click_id}", click_window_days: 30 });
assert.equal(offer.status, 201, JSON.stringify(offer.body));
const send = await api("POST", "/sends", { instance_id: INSTANCE, contact_id: "5511900000101",
  message_id: "browser-m1", campaign: "spring", creative: "k", offer_id: "browser-offer" });
assert.equal(send.status, 201, JSON.stringify(send.body));
const code = send.body.tracked_url.split("/c/")[1];
const click = await fetch(`${BASE}/c/${code}`, { redirect: "manual",
  headers: { "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15" } });
assert.equal(click.status, 302);
const clickId = click.headers.get("location").split("aff=")[1];
const postback = await fetch(
  `${BASE}/postbacks/generic?token=${POSTBACK_TOKEN}&click_id=${clickId}&conversion_id=B1&payout=19.90`);
assert.equal(postback.status, 200, await postback.text());
const report = (await api("GET", "/reports/revenue?group_by=offer")).body;
const usd = report.totals.find((total) => total.currency === "USD");
assert.equal(usd.revenue, "19.90", JSON.stringify(report));

await inBrowser("analytics", "dashboard", async ({ page, shot }) => {
  const noSidewaysScroll = async (what) => {
    await page.setViewportSize({ width: 375, height: 800 });
    await shot(`${what}-phone`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${what} scrolls sideways at phone width (${width}px)`);
    await page.setViewportSize({ width: 1280, height: 800 });
  };

  await page.goto(`${BASE}/app/login`);
  await page.fill("#key", ADMIN);
  await page.click("button[type=submit]");
  await page.waitForSelector("#switch-instance");
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  await page.click("nav >> text=Analytics");
  await page.waitForURL(new RegExp(`/app/instances/${INSTANCE}/analytics`));
  await page.click("nav >> text=30 days");
  await page.waitForURL(/days=30/);
  for (const stat of ["new_contacts", "click_to_chat_contacts", "meta_ads"]) {
    assert.equal(Number(await page.textContent(`[data-stat=${stat}]`)), stats[stat], stat);
  }
  assert.equal(Number(await page.textContent("[data-count=Rules]")), stats.by_kind.rule);
  assert.ok(await page.$("rect.platform-tiktok"), "the TikTok bar has its platform class");
  const fill = await page.$eval("rect.platform-tiktok", (bar) => getComputedStyle(bar).fill);
  assert.equal(fill, "rgb(1, 1, 1)", "TikTok's colour from platform_color (#010101)");
  await shot("analytics");
  await noSidewaysScroll("analytics");
  console.log("ok - the Analytics numbers are the stats API's, the bars carry the platform colours");

  await page.click("nav >> text=Revenue");
  await page.waitForURL(/\/app\/revenue/);
  await page.selectOption("#group-by", "offer");
  await page.click("text=Show");
  await page.waitForURL(/group_by=offer/);
  assert.equal(await page.textContent("[data-total=USD]"), usd.revenue);
  assert.ok(await page.$("[data-chart=revenue-USD] rect.revenue-bar"), "a revenue-per-day bar");
  await shot("revenue");
  await noSidewaysScroll("revenue");
  console.log("ok - the Revenue totals are the report API's");

  await page.goto(`${BASE}/app/revenue?group_by=colour`);
  assert.match(await page.textContent("[role=alert]"), /group_by: must be one of/);
  console.log("ok - a bad group_by shows the API's message on a page");
});
