"""Signed WhatsApp deliveries for infra/scripts/load/webhooks.lua, and the mix they follow.

wrk's LuaJIT has no HMAC, so the bodies and their X-Hub-Signature-256 are made here: one file
per wrk thread ("<out>.1", "<out>.2", ...), one "<hex HMAC-SHA256 of the body> <body>" line per
delivery, each a distinct contact's first message (its own wa_id and wamid), timestamped now.

  webhooks.py messages --instance ID --secret S --threads T --per-thread N --out PREFIX
  webhooks.py statuses --instance ID --secret S --threads T --per-thread N --out PREFIX

The n-th message of a thread (from 1, as the Lua script counts) is of kind `kind_of(n)`: a
click-to-WhatsApp ad referral, a pre-filled text that one of the two rules of `RULES` matches,
or a text no rule matches. infra/scripts/load/check.py counts the kinds of what was sent with it.
"""

import argparse
import hashlib
import hmac
import json
import time

# Rules installed on each loaded instance: two that the mix matches, then ones it never does
# (so that the matcher evaluates a realistic set). (name, match kind, pattern, kind it matches)
RULES = [
    ("TikTok summer", "contains", "TikTok ad", "tiktok"),
    ("Google spring", "prefix", "Hello from Google", "google"),
] + [(f"Unused {k}", "contains", f"promo code XQ{k}", None) for k in range(6)] + [
    ("Unused order regex", "regex", r"^order #\d{6}$", None),
    ("Unused exact", "exact", "start campaign 42", None),
]

KINDS = ("meta_ad", "tiktok", "google", "unmatched")


def kind_of(n):
    """40% Meta ad referrals, 20% + 20% texts two rules match, 20% texts no rule matches."""
    slot = n % 10
    if slot < 4:
        return "meta_ad"
    if slot < 6:
        return "tiktok"
    if slot < 8:
        return "google"
    return "unmatched"


def kinds_sent(sent):
    """How many of the first `sent` messages of a thread are of each kind."""
    counts = dict.fromkeys(KINDS, 0)
    full, rest = divmod(sent, 10)
    for slot in range(10):
        counts[kind_of(slot)] += full
    for n in range(full * 10 + 1, sent + 1):
        counts[kind_of(n)] += 1
    return counts


TEXTS = {
    "meta_ad": "Hi! Is this still available?",
    "tiktok": "Hi, I saw your TikTok ad! Order {n}",
    "google": "Hello from Google, I want the spring offer {n}",
    "unmatched": "Hello, are you open today? {n}",
}


def message_body(instance, thread, n, now):
    kind = kind_of(n)
    wa_id = f"1{thread:02d}{n:09d}"
    message = {
        "from": wa_id,
        "id": f"wamid.LOAD{instance}T{thread}N{n}",
        "timestamp": str(now),
        "type": "text",
        "text": {"body": TEXTS[kind].format(n=n)},
    }
    if kind == "meta_ad":
        message["referral"] = {
            "source_url": "https://fb.me/load",
            "source_id": f"12022630585{n % 5}",
            "source_type": "ad",
            "headline": "Chat with us",
            "media_type": "image",
            "ctwa_clid": f"ARAkLoad{thread}x{n}",
        }
    return delivery(instance, {"contacts": [{"profile": {"name": "Load Person"}, "wa_id": wa_id}],
                               "messages": [message]})


STATUSES = ("sent", "delivered", "read")


def status_body(instance, thread, n, now):
    """One status notification: what each outbound message brings up to three of."""
    return delivery(instance, {"statuses": [{
        "id": f"wamid.OUT{thread}N{n // 3}",
        "status": STATUSES[n % 3],
        "timestamp": str(now),
        "recipient_id": f"1{thread:02d}{n // 3:09d}",
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
    }]})


def delivery(instance, value):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550000000", "phone_number_id": instance},
             **value}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "load-waba",
                                  "changes": [{"field": "messages", "value": value}]}]},
                      separators=(",", ":")).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("messages", "statuses"))
    parser.add_argument("--instance", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--per-thread", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    make = message_body if args.what == "messages" else status_body
    key, now = args.secret.encode(), int(time.time())
    for thread in range(1, args.threads + 1):
        with open(f"{args.out}.{thread}", "wb") as out:
            for n in range(1, args.per_thread + 1):
                body = make(args.instance, thread, n, now)
                signature = hmac.new(key, body, hashlib.sha256).hexdigest()
                out.write(signature.encode() + b" " + body + b"\n")


if __name__ == "__main__":
    main()
