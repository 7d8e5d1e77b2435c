// End-to-end test of the dashboard in headless Chromium (Debian's), driven by playwright-core,
// against a running local server (BASE_URL): sign in with the admin key, open an instance, check
// the 7-day numbers against the stats API, add a rule through the form, see the API's message for
// a bad regex beside the field, test a text, preview a backfill (against the API's preview) and
// run it to done, open a rule's edit form, sign out; then sign in with the read-only key, see no
// write buttons, and see a write posted anyway (with the page's own CSRF token) refused with 403
// and nothing changed. Saves a screenshot of each page under SCREENSHOTS (default
// .tools/screenshots/).
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_API_KEY=… READONLY_API_KEY=… META_APP_SECRET=… \
//     node infra/scripts/browser/dashboard.test.mjs
import assert from "node:assert/strict";
import { ADMIN, BASE, api, deliverText, eventually, inBrowser } from "./common.mjs";

const READONLY = process.env.READONLY_API_KEY;
assert.ok(READONLY, "READONLY_API_KEY is the local server's read-only key");

// Its own instance, so the widget test's contacts do not count here.
const INSTANCE = "109876543210987";
const deliver = (waId, text) =>
  deliverText(INSTANCE, waId, "Dashboard Visitor", `wamid.dash-${waId}`, text);

// Something to count: one rule, a contact it matches and two it does not (one of them the
// Google rule added below will match, once backfilled).
const created = await api("POST", `/instances/${INSTANCE}/rules`, {
  name: "TikTok summer", platform: "tiktok", match: { kind: "contains", pattern: "tiktok" },
});
assert.equal(created.status, 201, JSON.stringify(created.body));
await deliver("5511900000001", "Hi, I saw your TikTok ad!");
await deliver("5511900000002", "hello");
await deliver("5511900000003", "found you on google");
const stats = await eventually("the matcher", async () => {
  const seen = await api("GET", `/instances/${INSTANCE}/stats`);
  return seen.body.click_to_chat_contacts === 3 && seen.body.unmatched === 2 ? seen.body : null;
});

await inBrowser("dashboard", "dashboard", async ({ page, shot }) => {
  /** Shoots the page at phone width as `name`, and fails it when it scrolls sideways there. */
  const atPhoneWidth = async (name) => {
    await page.setViewportSize({ width: 375, height: 800 });
    await shot(name);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 375, `${name} scrolls sideways at phone width (${width}px)`);
    await page.setViewportSize({ width: 1280, height: 800 });
  };

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

  // The preview counts what POST …/backfill with dry_run counts, rule by rule.
  const preview = (await api("POST", `/instances/${INSTANCE}/backfill`, { days: 7, dry_run: true })).body;
  assert.equal(preview.would_update, 1, JSON.stringify(preview));
  await page.fill("#backfill-days", "0");
  await page.click("button:has-text(\"Preview\")");
  assert.match(await page.textContent("#backfill-days-error"), /days: must be from 1 to 90/);
  assert.equal(await page.getAttribute("#backfill-days", "aria-invalid"), "true");
  await page.fill("#backfill-days", "7");
  await page.click("button:has-text(\"Preview\")");
  await page.waitForSelector("#backfill-preview");
  assert.equal(Number(await page.textContent("#backfill-preview [data-stat=would_update]")), preview.would_update);
  assert.equal(Number(await page.textContent("#backfill-preview [data-stat=scanned]")), preview.scanned);
  for (const tally of preview.by_rule) {
    assert.equal(Number(await page.textContent(`tr[data-rule-id="${tally.rule_id}"] [data-stat=count]`)), tally.count);
  }
  await shot("backfill-preview");
  await atPhoneWidth("backfill-preview-phone");
  console.log("ok - the backfill preview is the API's (a bad days value shows its message)");

  await page.click("button:has-text(\"Run the backfill\")");
  await page.waitForURL(new RegExp(`/app/instances/${INSTANCE}/backfill/[0-9A-Z]{26}$`));
  const jobId = page.url().split("/").pop();
  await eventually("the backfill job", async () => {
    await page.reload();
    return (await page.textContent("#job-status")) === "done";
  });
  const job = (await api("GET", `/instances/${INSTANCE}/backfill/${jobId}`)).body;
  assert.equal(job.status, "done");
  assert.equal(job.updated, preview.would_update);
  for (const stat of ["scanned", "updated", "skipped_attributed"]) {
    assert.equal(Number(await page.textContent(`[data-stat=${stat}]`)), job[stat], stat);
  }
  assert.equal(await page.locator("meta[http-equiv=refresh]").count(), 0, "a done job's page stays put");
  await shot("backfill-job");
  await atPhoneWidth("backfill-job-phone");
  console.log("ok - the backfill ran to done and its page shows the API's numbers");

  await page.click("a:has-text(\"← Attribution\")");
  await atPhoneWidth("attribution-phone");

  await page.click("a:has-text(\"Edit\") >> nth=0");
  await page.waitForSelector("#edit-name");
  await shot("edit-rule");

  await page.click("text=Sign out");
  await page.waitForURL(/\/app\/login$/);
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  assert.match(page.url(), /\/app\/login$/);
  console.log("ok - signed out: the pages go back to the sign-in form");

  // Read-only: the same pages without a write button.
  await page.fill("#key", READONLY);
  await page.click("button[type=submit]");
  await page.waitForSelector("#switch-instance");
  await page.goto(`${BASE}/app/instances/${INSTANCE}/attribution`);
  await page.waitForSelector("[data-stat=click_to_chat_contacts]");
  const before = (await api("GET", `/instances/${INSTANCE}/rules`)).body;
  const rule = before.rules[0];
  const writeButtons = "main button:not(:has-text(\"Test\"))";
  assert.equal(await page.locator(writeButtons).count(), 0, "write buttons on the Attribution view");
  assert.equal(await page.locator("#backfill-days, #add-name").count(), 0, "write forms on the Attribution view");
  await shot("attribution-readonly");
  await page.goto(`${BASE}/app/instances/${INSTANCE}/rules/${rule.id}`);
  await page.waitForSelector("#edit-readonly");
  assert.equal(await page.locator("main button").count(), 0, "write buttons on the edit page");
  assert.equal(await page.inputValue("#edit-name"), rule.name);
  await shot("edit-rule-readonly");

  // Posted anyway, as a form this page builds with its own session's CSRF token (the CSP
  // refuses a script's fetch, so a form is how a page could write): 403, and nothing changes.
  const attribution = `${BASE}/app/instances/${INSTANCE}/attribution`;
  const postAnyway = async (path, fields) => {
    await page.goto(attribution);
    const csrf = await page.$eval("input[name=csrf]", (input) => input.value);
    const [response] = await Promise.all([
      page.waitForNavigation(),
      page.evaluate(({ path, fields }) => {
        const form = document.createElement("form");
        form.method = "post";
        form.action = path;
        for (const [name, value] of Object.entries(fields)) {
          const input = document.createElement("input");
          Object.assign(input, { type: "hidden", name, value });
          form.append(input);
        }
        document.body.append(form);
        form.submit();
      }, { path, fields: { csrf, ...fields } }),
    ]);
    return response.status();
  };
  const base = `/app/instances/${INSTANCE}`;
  const answers = [
    await postAnyway(`${base}/rules/${rule.id}`, { action: "delete" }),
    await postAnyway(`${base}/rules/${rule.id}`, { action: "disable" }),
    await postAnyway(`${base}/rules`, { name: "Sneaky", platform: "tiktok", match_kind: "contains", pattern: "x", enabled: "on" }),
    await postAnyway(`${base}/backfill`, { days: "7", action: "run" }),
  ];
  assert.deepEqual(answers, [403, 403, 403, 403]);
  assert.match(await page.textContent("main"), /read-only session may look but not change anything/);
  await shot("readonly-refused");
  assert.deepEqual((await api("GET", `/instances/${INSTANCE}/rules`)).body, before, "the rules changed");
  console.log("ok - a read-only session sees no write buttons, and its writes answer 403 and change nothing");
});
