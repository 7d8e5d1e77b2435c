// End-to-end test of the dashboard in headless Chromium (Debian's), driven by playwright-core,
// against a running local server (BASE_URL): sign in with the admin key, open an instance, check
// the 7-day numbers against the stats API, add a rule through the form, see the API's message for
// a bad regex beside the field, test a text, open a rule's edit form, sign out. Saves a
// screenshot of each page under SCREENSHOTS (default .tools/screenshots/).
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… META_APP_SECRET=… node infra/scripts/browser/dashboard.test.mjs
import assert from "node:assert/strict";
import { ADMIN, BASE, api, deliverText, eventually, inBrowser } from "./common.mjs";

// Its own instance, so the widget test's contacts do not count here.
const INSTANCE = "109876543210987";
const deliver = (waId, text) =>
  deliverText(INSTANCE, waId, "Dashboard Visitor", `wamid.dash-${waId}`, text);

// Something to count: one rule, a contact it matches and one it does not.
const created = await api("POST", `/instances/${INSTANCE}/rules`, {
  name: "TikTok summer", platform: "tiktok", match: { kind: "contains", pattern: "tiktok" },
});
assert.equal(created.status, 201, JSON.stringify(created.body));
await deliver("5511900000001", "Hi, I saw your TikTok ad!");
await deliver("5511900000002", "hello");
const stats = await eventually("the matcher", async () => {
  const seen = await api("GET", `/instances/${INSTANCE}/stats`);
  return seen.body.click_to_chat_contacts === 2 ? seen.body : null;
});

await inBrowser("dashboard", "dashboard", async ({ page, shot }) => {

  // Not signed in, / goes to the sign-in form; a wrong key is refused there.
  await page.goto(`${BASE}/`);
  assert.match(page.url(), /\/app\/login$/);
  await shot("login");
  await page.fill("#key", "not-the-key");
  await page.click("button[type=submit]");
  assert.match(await page.textContent("#key-error"), /neither the admin key nor the read-only key/);
  await page.fill("#key", ADMIN);
  await page.click("button[type=submit]");
  await page.waitForSelector("#switch-instance");
  await shot("instances");
  console.log("ok - signed in with the admin key (a wrong key shows the form again)");

  // Other tests' instances are listed too, so / shows the list; the selector opens ours.
  assert.match(page.url(), /\/app\/instances$/);
  assert.ok(await page.isVisible(`tr[data-instance="${INSTANCE}"]`), "the instance is listed");
  await page.selectOption("#switch-instance", INSTANCE);
  await page.click("header button:has-text(\"Open\")");
  await page.waitForURL(new RegExp(`/app/instances/${INSTANCE}/attribution`));
  for (const [stat, value] of [
    ["click_to_chat_contacts", stats.click_to_chat_contacts],
    ["matched_by_rules", stats.matched_by_rules],
    ["unmatched", stats.unmatched],
    ["meta_ads", stats.meta_ads],
    ["web", stats.by_kind.web],
  ]) {
    assert.equal(Number(await page.textContent(`[data-stat=${stat}]`)), value, stat);
  }
  assert.equal(stats.matched_by_rules, 1);
  await shot("attribution");
  console.log("ok - the 7-day numbers are the stats API's");

  await page.fill("#add-name", "Google spring");
  await page.selectOption("#add-platform", "google");
  await page.selectOption("#add-match_kind", "contains");
  await page.fill("#add-pattern", "google");
  await page.click("text=Add rule");
  await page.waitForSelector("text=Google spring");
  const listed = await api("GET", `/instances/${INSTANCE}/rules`);
  assert.deepEqual(listed.body.rules.map((rule) => rule.name).sort(), ["Google spring", "TikTok summer"]);
  console.log("ok - a rule added through the form is in GET /instances/{id}/rules");

  await page.fill("#add-name", "Broken");
  await page.selectOption("#add-match_kind", "regex");
  await page.fill("#add-pattern", "tik(tok");
  await page.click("text=Add rule");
  assert.match(await page.textContent("#add-pattern-error"), /invalid regex/);
  assert.equal(await page.getAttribute("#add-pattern", "aria-invalid"), "true");
  await shot("bad-regex");
  assert.equal((await api("GET", `/instances/${INSTANCE}/rules`)).body.rules.length, 2);
  console.log("ok - a bad regex shows the API's message beside the pattern and stores nothing");

  await page.fill("#test-text", "found you on Google");
  await page.click("form[method=get] >> button:has-text(\"Test\")");
  assert.match(await page.textContent("#test-answer"), /Google spring/);
  await shot("test-a-text");
  console.log("ok - the test box names the rule that would match");

  await page.setViewportSize({ width: 375, height: 800 });
  await shot("attribution-phone");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `the page scrolls sideways at phone width (${width}px)`);
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.click("a:has-text(\"Edit\") >> nth=0");
  await page.waitForSelector("#edit-name");
  await shot("edit-rule");

  await page.click("text=Sign out");
  await page.waitForURL(/\/app\/login$/);
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  assert.match(page.url(), /\/app\/login$/);
  console.log("ok - signed out: the pages go back to the sign-in form");
});
