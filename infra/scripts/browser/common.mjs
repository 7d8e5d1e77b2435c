// What the browser tests share: the admin API client, polling, signed WhatsApp deliveries and
// the Chromium launch and the run of a page test. Environment: BASE_URL, ADMIN_API_KEY, META_APP_SECRET, PLAYWRIGHT_MODULES.
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const require = createRequire(process.env.PLAYWRIGHT_MODULES || import.meta.url);
const { chromium } = require("playwright-core");

export const BASE = process.env.BASE_URL;
export const ADMIN = process.env.ADMIN_API_KEY;
const APP_SECRET = process.env.META_APP_SECRET;

/** One call of the admin API (JSON in and out) with the admin key. */
export async function api(method, path, body, headers = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}`, ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** The first truthy answer of `probe`, polled for up to 10 s. */
export async function eventually(what, probe) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A WhatsApp text message from `waId` to `instance`, signed as Meta signs it, posted now. */
export async function deliverText(instance, waId, name, messageId, text) {
  const delivery = JSON.stringify({
    object: "whatsapp_business_account",
    entry: [{ id: "waba", changes: [{ field: "messages", value: {
      messaging_product: "whatsapp",
      metadata: { display_phone_number: "15550000000", phone_number_id: instance },
      contacts: [{ profile: { name }, wa_id: waId }],
      messages: [{ from: waId, id: messageId, timestamp: String(Math.floor(Date.now() / 1000)),
        type: "text", text: { body: text } }],
    } }] }],
  });
  const signature = "sha256=" + createHmac("sha256", APP_SECRET).update(delivery).digest("hex");
  const posted = await api("POST", "/webhooks/meta", delivery, { "x-hub-signature-256": signature });
  assert.equal(posted.status, 200, JSON.stringify(posted.body));
}

/** Debian's headless Chromium, without the background traffic a test does not want. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

const SHOTS = process.env.SCREENSHOTS || ".tools/screenshots";

/**
 * Runs `body({ page, shot })` in a fresh page (downloads accepted) of headless Chromium, fails
 * it on any Content-Security-Policy refusal, saves `shot(name)` as SHOTS/<prefix>-<name>.png,
 * then prints the test's pass/fail line and exits with its status.
 */
export async function inBrowser(test, prefix, body) {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await launch();
  let failed = false;
  try {
    const page = await (await browser.newContext({ acceptDownloads: true })).newPage();
    const refused = [];
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/.test(message.text())) refused.push(message.text());
    });
    const shot = async (name) => page.screenshot({ path: `${SHOTS}/${prefix}-${name}.png`, fullPage: true });
    await body({ page, shot });
    assert.deepEqual(refused, [], "the Content-Security-Policy refused something");
  } catch (error) {
    failed = true;
    console.error(`not ok - ${error.stack || error}`);
  } finally {
    await browser.close();
  }
  console.log(`${test} browser: ${failed ? 0 : 1} passed, ${failed ? 1 : 0} failed`);
  process.exit(failed ? 1 : 0);
}
