// End-to-end test of the widget snippet in headless Chromium (Debian's), driven by
// playwright-core, against a running local server (BASE_URL): a visitor lands with UTMs and a
// gclid, navigates, opens the chat, clicks the rewritten wa.me link; the matching signed
// WhatsApp webhook is posted; the WhatsApp contact must carry the landing's acquisition.
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… META_APP_SECRET=… node infra/scripts/browser/widget.test.mjs
import assert from "node:assert/strict";
import { BASE, api, deliverText, eventually, launch } from "./common.mjs";

const INSTANCE = "106540352242922";
const WA_ID = "5511912345678";

const widget = await api("POST", `/instances/${INSTANCE}/widget`, { allowed_origins: [BASE] });
assert.equal(widget.status, 201, JSON.stringify(widget.body));
const key = widget.body.widget_key;

const browser = await launch();
let failed = false;
try {
  const context = await browser.newContext();
  await context.addInitScript(({ instanceId, key, endpoint }) => {
    window.AttributionWidgetConfig = { instanceId, key, endpoint };
  }, { instanceId: INSTANCE, key, endpoint: BASE });
  const page = await context.newPage();
  page.on("console", (message) => console.log(`  [page] ${message.text()}`));

  // Land from an ad, then move to another page of the site (no UTMs there).
  await page.goto(`${BASE}/widget/demo.html?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=TEST123`);
  await page.evaluate(() => window.AttributionWidget.ready);
  await page.click("#next");
  await page.waitForURL(/page=2/);
  await page.evaluate(() => window.AttributionWidget.ready);

  // Open the chat: the web contact gets the landing's first touch.
  await page.click("#open-chat");
  const answer = JSON.parse(await eventually("the chat answer", async () => {
    const text = await page.textContent("#log");
    return text && text.trim().startsWith("{") ? text : null;
  }));
  // The public answer names the web contact and nothing stored; the admin API shows it.
  const visitorId = await page.evaluate(() => window.AttributionWidget.visitorId());
  assert.equal(answer.visitor_id, visitorId);
  assert.equal(answer.contact_id, `web:${visitorId}`);
  assert.equal(answer.acquisition, undefined);
  const webContact = await api("GET", `/instances/${INSTANCE}/contacts/${answer.contact_id}`);
  assert.equal(webContact.status, 200);
  assert.equal(webContact.body.channel, "web");
  assert.equal(webContact.body.acquisition.kind, "web");
  assert.equal(webContact.body.acquisition.utm.campaign, "spring");
  assert.equal(webContact.body.acquisition.click_ids.gclid, "TEST123");
  assert.equal(webContact.body.acquisition.platform, "google");
  console.log(`ok - the web contact ${visitorId} has the landing page's UTMs after navigation`);

  // Click the rewritten wa.me link; WhatsApp is not reachable here, so the request is caught.
  let whatsappUrl = null;
  await page.route("https://wa.me/**", (route) => {
    whatsappUrl = route.request().url();
    return route.abort();
  });
  await page.click("#whatsapp").catch(() => {});
  await eventually("the wa.me navigation", async () => whatsappUrl);
  const text = new URL(whatsappUrl).searchParams.get("text");
  const match = /\[ref:([0-9a-z]{8})\]$/.exec(text);
  assert.ok(match, `the wa.me text carries a ref code: ${text}`);
  assert.ok(text.startsWith("Hi, I want the red shoes"), text);
  console.log(`ok - the wa.me link carries ${match[0]}`);

  // WhatsApp delivers that text as the contact's first message.
  await deliverText(INSTANCE, WA_ID, "Browser Visitor", "wamid.browser-test", text);
  const contact = await eventually("the matcher", async () => {
    const seen = await api("GET", `/instances/${INSTANCE}/contacts/${WA_ID}`);
    return seen.status === 200 && seen.body.acquisition ? seen.body : null;
  });
  assert.equal(contact.acquisition.kind, "web", JSON.stringify(contact));
  assert.equal(contact.acquisition.via, "wa.me");
  assert.equal(contact.acquisition.ref_code, match[1]);
  assert.equal(contact.acquisition.platform, "google");
  assert.equal(contact.acquisition.utm.campaign, "spring");
  assert.equal(contact.acquisition.click_ids.gclid, "TEST123");
  console.log("ok - the WhatsApp contact has the visit's acquisition (kind web, via wa.me)");
} catch (error) {
  failed = true;
  console.error(`not ok - ${error.stack || error}`);
} finally {
  await browser.close();
}
console.log(`browser: ${failed ? 0 : 1} passed, ${failed ? 1 : 0} failed`);
process.exit(failed ? 1 : 0);
