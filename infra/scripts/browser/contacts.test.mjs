// End-to-end test of the dashboard's Contacts pages in headless Chromium (Debian's), driven by
// playwright-core, against a running local server (BASE_URL): sign in, filter the contacts,
// download the CSV and compare it with the API's export, open a contact's panel, check no CSP
// refusal and no sideways scroll at phone width. Screenshots under SCREENSHOTS.
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… META_APP_SECRET=… node infra/scripts/browser/contacts.test.mjs
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import { ADMIN, BASE, api, deliverText, eventually, inBrowser } from "./common.mjs";

// Its own instance, so the other browser tests' contacts do not show here.
const INSTANCE = "108765432109876";
const deliver = (waId, name, text) => deliverText(INSTANCE, waId, name, `wamid.contacts-${waId}`, text);

const created = await api("POST", `/instances/${INSTANCE}/rules`, {
  name: "TikTok", platform: "tiktok", campaign: "spring", match: { kind: "contains", pattern: "tiktok" },
});
assert.equal(created.status, 201, JSON.stringify(created.body));
await deliver("5511800000001", "Ana Souza", "=saw it on tiktok");
await deliver("5511800000002", "Bruno Lima", "hello");
await eventually("the matcher", async () => {
  const seen = await api("GET", `/instances/${INSTANCE}/contacts?kind=rule`);
  return seen.body.contacts.length === 1 ? seen.body : null;
});

// A CSV parser small enough to read here: quoted cells, doubled quotes, commas and newlines.
function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (c !== "\r") cell += c;
  }
  return rows;
}

await inBrowser("contacts", "contacts", async ({ page, shot }) => {

  await page.goto(`${BASE}/app/login`);
  await page.fill("#key", ADMIN);
  await page.click("button[type=submit]");
  await page.waitForSelector("#switch-instance");
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  await page.click("a:has-text(\"Contacts\")");
  await page.waitForURL(new RegExp(`/app/instances/${INSTANCE}/contacts`));
  const ids = async () => page.$$eval("tr[data-contact-id]", (rows) => rows.map((row) => row.dataset.contactId));
  assert.deepEqual(await ids(), ["5511800000002", "5511800000001"]);
  assert.match(await page.getAttribute("tr[data-contact-id='5511800000001'] .avatar", "class"), /ring-tiktok/);
  const ring = await page.$eval("tr[data-contact-id='5511800000001'] .avatar", (el) => getComputedStyle(el).borderTopColor);
  assert.equal(ring, "rgb(1, 1, 1)"); // #010101, TikTok's fixed colour
  await shot("all");
  console.log("ok - the Contacts page lists the instance's contacts, ringed by source");

  await page.selectOption("#f-platform", "tiktok");
  await page.click("button:has-text(\"Filter\")");
  await page.waitForURL(/platform=tiktok/);
  assert.deepEqual(await ids(), ["5511800000001"]);
  assert.equal(await page.inputValue("#f-platform"), "tiktok", "the chosen platform stays selected");
  await page.selectOption("#f-platform", "");
  await page.selectOption("#f-kind", "rule");
  await page.click("button:has-text(\"Filter\")");
  await page.waitForURL(/kind=rule/);
  assert.deepEqual(await ids(), ["5511800000001"]);
  await shot("filtered");
  console.log("ok - filtering by platform or by source keeps the rule's contact only");

  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  const csv = readFileSync(await download.path(), "utf8");
  const exported = await fetch(`${BASE}/instances/${INSTANCE}/contacts.csv?kind=rule`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  });
  assert.equal(csv, await exported.text());
  const rows = parseCsv(csv);
  assert.deepEqual(rows[0], ["contact_id", "channel", "first_seen_at", "referral_source", "referral_id", "platform", "campaign", "ad", "first_message", "ad_name", "ad_set_name", "campaign_name"]);
  assert.equal(rows.length, 2);
  assert.deepEqual(rows[1].slice(3, 7), ["rule", created.body.id, "tiktok", "spring"]);
  assert.equal(rows[1][8], "'=saw it on tiktok");
  console.log("ok - Download CSV is the API's export for the same filters, formulas guarded");

  await page.click("tr[data-contact-id='5511800000001'] a");
  await page.waitForSelector("[data-field=contact_id]");
  const contact = (await api("GET", `/instances/${INSTANCE}/contacts/5511800000001`)).body;
  assert.equal(await page.textContent("[data-field=source]"), contact.acquisition.kind);
  assert.equal(await page.textContent("[data-field=first_message]"), contact.first_message.text);
  const journey = (await api("GET", `/instances/${INSTANCE}/contacts/5511800000001/journey`)).body;
  for (const count of ["sends", "clicks", "conversions"]) {
    assert.equal(Number(await page.textContent(`[data-field=${count}]`)), journey[count], count);
  }
  await shot("panel");
  console.log("ok - the contact panel shows what the contact and journey APIs answer");

  await page.setViewportSize({ width: 375, height: 800 });
  for (const path of [`/app/instances/${INSTANCE}/contacts`, `/app/instances/${INSTANCE}/contacts/5511800000001`]) {
    await page.goto(`${BASE}${path}`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${path} scrolls sideways at phone width (${width}px)`);
  }
  await shot("panel-phone");
  await page.goto(`${BASE}/app/instances/${INSTANCE}/contacts`);
  await shot("all-phone");
  console.log("ok - no sideways scroll at 375 px");
});
