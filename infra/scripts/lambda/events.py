#!/usr/bin/env python3
"""The Lambda check's events (infra/scripts/events/*.json) and what each answer must hold.

    events.py generate            (re)writes infra/scripts/events/*.json from the fixtures and
                                  infra/scripts/lambda/secrets.env; `git diff` shows any change
    events.py list                prints "FUNCTION EVENT_FILE" per check, in the order to run
    events.py check EVENT_FILE    reads the function's answer (the invoke payload, JSON) on
                                  stdin and exits 0 if it is right, else 1 with the reason

The HTTP events are API Gateway HTTP API payload 2.0 (what the stack's HttpApi sends), the
matcher's an SQS batch: the same files work with `sam local invoke -e` where Docker runs.
Order matters: the matcher's job is for the contact the pre-filled delivery creates, the
contact read sees the matcher's write, the widget's preflight admits the origin the rules
function's widget settings allowed, the click follows the send the revenue API created, and the
contact's journey holds that send and that click.
Only the standard library.
"""

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "infra" / "scripts" / "events"
FIXTURES = ROOT / "tests" / "fixtures" / "meta"

INSTANCE = "106540352242922"
PREFILLED_CONTACT = "818012345678"
HOST = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
OFFER = "lambda-check-shoes"
MESSAGE_ID = "wamid.lambda-check-1"
CHALLENGE = "1158201444"
UNKNOWN_CLICK = "01JZZZZZZZZZZZZZZZZZZZZZZZ"
SEND_CONTACT = "16505551234"
SITE = "https://shop.example"
CODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def secrets():
    values = {}
    for line in (ROOT / "infra" / "scripts" / "lambda" / "secrets.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def send_code(link_secret, instance_id, message_id):
    """shared::revenue::links::send_code, so the click event can name the send in advance."""
    mac = hmac.new(link_secret.encode(), b"send-code", hashlib.sha256)
    for part in (instance_id, message_id):
        mac.update(b"\0" + part.encode())
    value = int.from_bytes(mac.digest()[:16], "big")
    code = []
    for _ in range(10):
        code.append(CODE_ALPHABET[value % 62])
        value //= 62
    return "".join(code)


def http_event(method, path, route, query="", headers=None, body=None, path_params=None):
    """An API Gateway HTTP API (payload format 2.0) request."""
    all_headers = {
        "accept": "*/*",
        "host": HOST,
        "user-agent": "Mozilla/5.0 (lambda-check)",
        "x-forwarded-for": "192.0.2.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    all_headers.update(headers or {})
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": HOST.split(".")[0],
            "domainName": HOST,
            "domainPrefix": HOST.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": "lambda-check-" + route.strip("/").replace("/", "-").replace("{", "").replace("}", ""),
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "26/Nov/2025:10:00:00 +0000",
            "timeEpoch": 1764151200000,
        },
        "isBase64Encoded": False,
    }
    if query:
        params = {}
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            params.setdefault(key, value)
        event["queryStringParameters"] = params
    if path_params:
        event["pathParameters"] = path_params
    if body is not None:
        event["body"] = body
    return event


def sqs_event(bodies):
    records = []
    for i, body in enumerate(bodies, 1):
        records.append(
            {
                "messageId": f"lambda-check-message-{i}",
                "receiptHandle": f"lambda-check-receipt-{i}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764151200000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1764151200001",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:attribution-engine-MatchQueue",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def meta_delivery(fixture, app_secret):
    raw = (FIXTURES / fixture).read_text()
    signature = hmac.new(app_secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    return http_event(
        "POST",
        "/webhooks/meta",
        "/webhooks/meta",
        headers={
            "content-type": "application/json",
            "user-agent": "facebookexternalua",
            "x-hub-signature-256": f"sha256={signature}",
        },
        body=raw,
    )


def events():
    """(function, file name, event, check) in the order the check runs them."""
    s = secrets()
    admin = {"authorization": f"Bearer {s['ADMIN_API_KEY']}"}
    code = send_code(s["LINK_SECRET"], INSTANCE, MESSAGE_ID)
    return [
        (
            "webhook",
            "webhook-verify.json",
            http_event(
                "GET",
                "/webhooks/meta",
                "/webhooks/meta",
                query=f"hub.mode=subscribe&hub.verify_token={s['META_VERIFY_TOKEN']}&hub.challenge={CHALLENGE}",
            ),
            lambda r: expect(r, 200, lambda b: b == CHALLENGE, f"body == {CHALLENGE!r}"),
        ),
        (
            "webhook",
            "webhook-meta-delivery.json",
            meta_delivery("whatsapp_text_ctwa_referral.json", s["META_APP_SECRET"]),
            lambda r: expect_json(r, 200, lambda j: j.get("events") == 1 and j.get("applied") == 1, "events == 1, applied == 1"),
        ),
        (
            "webhook",
            "webhook-meta-delivery-prefilled.json",
            meta_delivery("whatsapp_text_prefilled_tiktok.json", s["META_APP_SECRET"]),
            lambda r: expect_json(r, 200, lambda j: j.get("applied") == 1, "applied == 1 (its match job queued on SQS)"),
        ),
        (
            "matcher",
            "matcher-sqs-match.json",
            sqs_event([json.dumps({"type": "match", "instance_id": INSTANCE, "contact_id": PREFILLED_CONTACT})]),
            lambda r: check_batch(r),
        ),
        (
            "contacts",
            "contacts-get-contact.json",
            http_event(
                "GET",
                f"/instances/{INSTANCE}/contacts/{PREFILLED_CONTACT}",
                "/instances/{instance_id}/contacts/{contact_id}",
                headers=admin,
                path_params={"instance_id": INSTANCE, "contact_id": PREFILLED_CONTACT},
            ),
            lambda r: expect_json(
                r,
                200,
                lambda j: j.get("contact_id") == PREFILLED_CONTACT and j.get("rules_checked_at"),
                "contact_id and rules_checked_at (the matcher's write)",
            ),
        ),
        (
            "rules",
            "rules-list.json",
            http_event(
                "GET",
                f"/instances/{INSTANCE}/rules",
                "/instances/{instance_id}/rules",
                headers=admin,
                path_params={"instance_id": INSTANCE},
            ),
            lambda r: expect_json(r, 200, lambda j: isinstance(j.get("rules"), list), "a rules list"),
        ),
        (
            "rules",
            "rules-configure-widget.json",
            http_event(
                "POST",
                f"/instances/{INSTANCE}/widget",
                "/instances/{instance_id}/widget",
                headers={**admin, "content-type": "application/json"},
                body=json.dumps({"allowed_origins": [SITE]}),
                path_params={"instance_id": INSTANCE},
            ),
            lambda r: expect_json(
                r,
                201,
                lambda j: j.get("allowed_origins") == [SITE] and j.get("widget_key"),
                f"allowed_origins == [{SITE!r}] and a widget_key",
            ),
        ),
        (
            "widget",
            "widget-snippet.json",
            http_event("GET", "/widget.js", "/widget.js"),
            lambda r: expect(r, 200, lambda b: "AttributionWidget" in b, "the snippet (AttributionWidget)"),
        ),
        (
            "widget",
            "widget-preflight.json",
            http_event(
                "OPTIONS",
                "/webhooks/widget",
                "/webhooks/widget",
                query=f"instance_id={INSTANCE}",
                headers={"origin": SITE, "access-control-request-method": "POST"},
            ),
            lambda r: expect_header(r, 204, "access-control-allow-origin", SITE),
        ),
        (
            "revenue",
            "revenue-create-offer.json",
            http_event(
                "POST",
                "/offers",
                "/offers",
                headers={**admin, "content-type": "application/json"},
                body=json.dumps(
                    {
                        "offer_id": OFFER,
                        "name": "Shoes",
                        "destination_url": "https://shop.example/p?aff_click={click_id}",
                        "click_window_days": 30,
                    }
                ),
            ),
            lambda r: expect_json(r, 201, lambda j: j.get("offer_id") == OFFER, f"offer_id == {OFFER!r}"),
        ),
        (
            "revenue",
            "revenue-create-send.json",
            http_event(
                "POST",
                "/sends",
                "/sends",
                headers={**admin, "content-type": "application/json"},
                body=json.dumps(
                    {
                        "instance_id": INSTANCE,
                        "contact_id": SEND_CONTACT,
                        "message_id": MESSAGE_ID,
                        "campaign": "spring",
                        "creative": "tpl-a",
                        "offer_id": OFFER,
                    }
                ),
            ),
            lambda r: expect_json(r, 201, lambda j: j.get("code") == code, f"code == {code!r}"),
        ),
        (
            "clicks",
            "clicks-follow.json",
            http_event("GET", f"/c/{code}", "/c/{code}", path_params={"code": code}),
            lambda r: expect_redirect(r, "https://shop.example/p?aff_click="),
        ),
        (
            "revenue",
            "revenue-journey.json",
            http_event(
                "GET",
                f"/instances/{INSTANCE}/contacts/{SEND_CONTACT}/journey",
                "/instances/{instance_id}/contacts/{contact_id}/journey",
                headers=admin,
                path_params={"instance_id": INSTANCE, "contact_id": SEND_CONTACT},
            ),
            lambda r: expect_json(
                r,
                200,
                lambda j: j.get("sends") == 1 and j.get("clicks") == 1,
                "sends == 1, clicks == 1 (the send and its click)",
            ),
        ),
        (
            "postback",
            "postback-unknown-click.json",
            http_event(
                "GET",
                "/postbacks/generic",
                "/postbacks/{network}",
                query=f"token={s['POSTBACK_TOKEN']}&click_id={UNKNOWN_CLICK}&conversion_id=lambda-check-1&payout=1.50",
                path_params={"network": "generic"},
            ),
            lambda r: expect_json(r, 200, lambda j: j.get("status") == "unknown_click", "status == 'unknown_click'"),
        ),
    ]


class Wrong(Exception):
    pass


def body_text(response):
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return body


def status_is(response, status):
    got = response.get("statusCode")
    if got != status:
        raise Wrong(f"status {got}, expected {status}; body: {body_text(response)[:300]}")


def expect(response, status, test, what):
    status_is(response, status)
    if not test(body_text(response)):
        raise Wrong(f"body {body_text(response)[:300]!r} does not satisfy: {what}")
    return f"{status}, {what}"


def expect_json(response, status, test, what):
    status_is(response, status)
    try:
        data = json.loads(body_text(response))
    except ValueError:
        raise Wrong(f"body is not JSON: {body_text(response)[:300]!r}")
    if not isinstance(data, dict) or not test(data):
        raise Wrong(f"body {json.dumps(data)[:300]} does not satisfy: {what}")
    return f"{status}, {what}"


def header(response, name):
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    return headers.get(name, "")


def expect_redirect(response, prefix):
    status_is(response, 302)
    location = header(response, "location")
    if not location.startswith(prefix):
        raise Wrong(f"location {location!r} does not start with {prefix!r}")
    return f"302, location {location}"


def expect_header(response, status, name, value):
    status_is(response, status)
    if header(response, name) != value:
        raise Wrong(f"{name} is {header(response, name)!r}, expected {value!r}")
    return f"{status}, {name}: {value}"


def check_batch(response):
    if not isinstance(response, dict) or response.get("batchItemFailures") != []:
        raise Wrong(f"expected an SQS batch response with no failures, got {json.dumps(response)[:300]}")
    return "batchItemFailures == []"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    command = sys.argv[1]
    if command == "generate":
        EVENTS.mkdir(parents=True, exist_ok=True)
        for _, name, event, _ in events():
            (EVENTS / name).write_text(json.dumps(event, indent=2) + "\n")
            print(f"wrote infra/scripts/events/{name}")
    elif command == "list":
        for function, name, _, _ in events():
            print(function, f"infra/scripts/events/{name}")
    elif command == "check" and len(sys.argv) == 3:
        name = Path(sys.argv[2]).name
        checks = {n: check for _, n, _, check in events()}
        if name not in checks:
            sys.exit(f"no check for {name}")
        raw = sys.stdin.read()
        try:
            response = json.loads(raw)
            print(checks[name](response))
        except ValueError:
            print(f"answer is not JSON: {raw[:300]!r}")
            sys.exit(1)
        except Wrong as wrong:
            print(wrong)
            sys.exit(1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
