/*
 * Attribution engine: web chat widget snippet. No dependencies.
 *
 *   <script src="https://<engine>/widget.js" data-key="wk_…" data-instance="<instance id>"
 *           data-endpoint="https://<engine>"></script>
 *   (or set window.AttributionWidgetConfig = {key, instanceId, endpoint} before it)
 *
 * - Keeps the visit's first touch (landing page URL with its UTM parameters and click ids, and
 *   the external referrer) in localStorage, so it survives navigation within the site; a
 *   landing without campaign parameters or external referrer is kept only until one with them
 *   comes. Kept 90 days.
 * - AttributionWidget.openChat(message?) reports the chat opening (POST /webhooks/widget) and
 *   resolves to the engine's answer: call it when your chat opens.
 * - Rewrites the page's wa.me and api.whatsapp.com/send links so their pre-filled text ends with
 *   a ref code ( [ref:xxxxxxxx]) that carries the first touch into the WhatsApp conversation;
 *   AttributionWidget.rewriteLinks() does it again for links added later.
 */
(function (window, document) {
  "use strict";

  var script = document.currentScript;
  var config = window.AttributionWidgetConfig || {};
  function setting(name, attribute) {
    return config[name] || (script && script.getAttribute(attribute)) || "";
  }
  var key = setting("key", "data-key");
  var instanceId = setting("instanceId", "data-instance");
  var endpoint = setting("endpoint", "data-endpoint") ||
    (script && script.src ? new URL(script.src, window.location.href).origin : window.location.origin);
  endpoint = endpoint.replace(/\/+$/, "");

  var STORAGE_KEY = "attribution-widget:" + instanceId;
  var FIRST_TOUCH_DAYS = 90;
  var REF_DAYS = 29; // the engine keeps a ref code 30 days
  var DAY_MS = 24 * 60 * 60 * 1000;
  var CAMPAIGN_PARAMS = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "gclid", "fbclid", "gbraid", "wbraid", "ttclid", "msclkid", "li_fat_id"];

  function load() {
    try {
      return JSON.parse(window.localStorage.getItem(STORAGE_KEY)) || {};
    } catch (e) {
      return {};
    }
  }
  function save(state) {
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify(state));
    } catch (e) { /* storage full or disabled: the visit is still reported once */ }
  }
  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function externalReferrer() {
    try {
      var referrer = document.referrer && new URL(document.referrer);
      return referrer && referrer.host !== window.location.host ? referrer.href : "";
    } catch (e) {
      return "";
    }
  }

  var now = Date.now();
  var state = load();
  if (!state.visitor_id) {
    state.visitor_id = "v" + randomId();
  }
  if (state.first_touch && now - state.first_touch.at > FIRST_TOUCH_DAYS * DAY_MS) {
    delete state.first_touch;
    delete state.ref;
  }
  var query = new URLSearchParams(window.location.search);
  var referrer = externalReferrer();
  var telling = referrer !== "" || CAMPAIGN_PARAMS.some(function (name) { return query.get(name); });
  if (!state.first_touch || (telling && !state.first_touch.telling)) {
    state.first_touch = { page_url: window.location.href, referrer: referrer, telling: telling, at: now };
    delete state.ref; // a ref code carries the touch it was made for
  }
  save(state);

  function post(path, body) {
    body.instance_id = instanceId;
    body.visitor_id = state.visitor_id;
    body.page_url = state.first_touch.page_url;
    if (state.first_touch.referrer) {
      body.referrer = state.first_touch.referrer;
    }
    return window.fetch(endpoint + path + "?instance_id=" + encodeURIComponent(instanceId), {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Widget-Key": key },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) {
          throw new Error((answer.error && answer.error.message) || ("HTTP " + response.status));
        }
        return answer;
      });
    });
  }

  function openChat(message) {
    var body = { event_id: randomId() };
    if (message) {
      body.message = String(message);
    }
    return post("/webhooks/widget", body);
  }

  function refCode() {
    if (state.ref && now - state.ref.at < REF_DAYS * DAY_MS) {
      return Promise.resolve(state.ref);
    }
    return post("/webhooks/widget/ref", {}).then(function (answer) {
      state.ref = { code: answer.ref, suffix: answer.text_suffix, at: Date.now() };
      save(state);
      return state.ref;
    });
  }

  function isWhatsAppLink(url) {
    return url.hostname === "wa.me" ||
      ((url.hostname === "api.whatsapp.com" || url.hostname === "web.whatsapp.com") &&
        url.pathname.replace(/\/+$/, "") === "/send");
  }

  function rewriteLinks() {
    var links = Array.prototype.filter.call(document.querySelectorAll("a[href]"), function (link) {
      try {
        return isWhatsAppLink(new URL(link.href));
      } catch (e) {
        return false;
      }
    });
    if (links.length === 0) {
      return Promise.resolve(0);
    }
    return refCode().then(function (ref) {
      links.forEach(function (link) {
        var url = new URL(link.href);
        var text = url.searchParams.get("text") || "";
        if (text.indexOf("[ref:") === -1) {
          url.searchParams.set("text", text + ref.suffix);
          link.href = url.href;
        }
      });
      return links.length;
    });
  }

  var ready = new Promise(function (resolve) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", resolve);
    } else {
      resolve();
    }
  }).then(rewriteLinks).catch(function (error) {
    if (window.console) {
      window.console.warn("attribution widget:", error.message);
    }
    return 0;
  });

  window.AttributionWidget = {
    openChat: openChat,
    rewriteLinks: rewriteLinks,
    ready: ready,
    visitorId: function () { return state.visitor_id; },
  };
})(window, document);
