"""Set-up and count checks of infra/scripts/load.sh, through the local server's admin API (loopback).

Each wrk run leaves one `load-result` line (infra/scripts/load/report.lua). The checks compare what wrk
sent and saw answered with what the server counted, never timings:
- nothing processed, an error status, or a webhook pool that ran out fails the check;
- the server may have processed more than wrk saw answered (requests in flight when wrk
  stopped) but never more than wrk sent: answered <= counted <= sent, kind by kind.

  check.py rules      BASE KEY INSTANCE
  check.py sends      BASE KEY N CODES_FILE CLICKS_FILE   (an offer, N sends, a click on each)
  check.py webhooks   BASE KEY INSTANCE RESULT
  check.py statuses   BASE KEY INSTANCE RESULT
  check.py reads      RESULT
  check.py revenue    BASE KEY CLICKS_RESULT POSTBACKS_RESULT WARM_UP_CLICKS
  check.py row        ROUTE RESULT            (one row of the figures table)
"""

import http.client
import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webhooks  # noqa: E402

# How long the in-process matcher may take to finish the rule jobs the load queued.
MATCHER_WAIT_SECONDS = float(os.environ.get("MATCHER_WAIT_SECONDS", "600"))


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def result(path):
    """The `load-result` line of a wrk run, as numbers."""
    with open(path) as lines:
        found = [line.split()[1:] for line in lines if line.startswith("load-result ")]
    expect(found, f"{path}: wrk printed no load-result line")
    fields = dict(field.split("=", 1) for field in found[-1])
    parsed = {name: int(value) for name, value in fields.items() if name != "sent"}
    parsed["sent"] = [int(n) for n in fields["sent"].split(",")]
    parsed["answered"] = parsed["requests"] - parsed["status_errors"]
    return parsed


def served(run, what):
    """At least one request answered, every answer a 2xx/3xx, and no pool run out."""
    if run["socket_errors"]:
        # A timed-out request may still be processed: it counts as in flight.
        print(f"  ({what}: {run['socket_errors']} socket errors or timeouts)")
    expect(run["answered"] > 0, f"{what}: nothing was processed")
    expect(run["status_errors"] == 0,
           f"{what}: {run['status_errors']} answers with an error status")
    expect(run["exhausted"] == 0,
           f"{what}: the pre-generated deliveries ran out (raise MAX_RATE)")


def admin(base, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def install_rules(base, key, instance):
    for priority, (name, kind, pattern, matches) in enumerate(webhooks.RULES, start=1):
        admin(base, key, "POST", f"/instances/{instance}/rules", {
            "name": name, "platform": "tiktok" if matches == "tiktok" else "google",
            "match": {"kind": kind, "pattern": pattern}, "campaign": "load", "priority": priority})


def sends_and_clicks(base, key, count, codes_path, clicks_path):
    """An offer, `count` sends of it, and one click on each (to have click ids to post back
    on): the codes and the click ids, one a line."""
    admin(base, key, "POST", "/offers", {
        "offer_id": "load", "name": "Load", "destination_url": "https://shop.example/p?sub={click_id}"})
    sends = admin(base, key, "POST", "/sends", [
        {"instance_id": "1", "contact_id": f"c{i}", "message_id": f"m{i}",
         "campaign": f"camp{i % 10}", "creative": f"tpl{i % 7}", "offer_id": "load"}
        for i in range(count)])["sends"]
    server = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(server.hostname, server.port, timeout=60)
    with open(codes_path, "w") as codes, open(clicks_path, "w") as clicks:
        for send in sends:
            connection.request("GET", f"/c/{send['code']}", headers={"User-Agent": "Mozilla/5.0 warm-up"})
            response = connection.getresponse()
            response.read()
            expect(response.status == 302, f"a warm-up click answered {response.status}")
            codes.write(send["code"] + "\n")
            clicks.write(response.getheader("Location").rsplit("sub=", 1)[1] + "\n")
    connection.close()


def settled_stats(base, key, instance, in_flight):
    """The instance's stats once the matcher is done with the jobs the load queued: every new
    contact decided (a Meta ad, a rule match or unmatched), or the counts unchanged for 2 s with
    at most `in_flight` undecided. A delivery wrk left in flight when it stopped may have
    made its contact and lost its job with the connection: Meta, seeing no 200, would retry it,
    and the duplicate would queue the job again."""
    started, last, unchanged = time.monotonic(), None, 0
    while True:
        stats = admin(base, key, "GET", f"/instances/{instance}/stats?days=2")
        undecided = stats["new_contacts"] - (
            stats["meta_ads"] + stats["matched_by_rules"] + stats["unmatched"])
        counts = (stats["new_contacts"], undecided, json.dumps(stats["rules"]))
        unchanged = unchanged + 1 if counts == last else 0
        if undecided == 0 or (unchanged >= 4 and undecided <= in_flight):
            print(f"  (the matcher was done {time.monotonic() - started:.1f} s after the load)")
            return stats, undecided
        expect(time.monotonic() - started < MATCHER_WAIT_SECONDS,
               f"the matcher left {undecided} contacts undecided after "
               f"{MATCHER_WAIT_SECONDS:.0f} s ({in_flight} deliveries were in flight)")
        last = counts
        time.sleep(0.5)


def listed_contacts(base, key, instance):
    """How many contacts the newest-first listing holds, page after page."""
    count, cursor = 0, None
    while True:
        path = f"/instances/{instance}/contacts?limit=500"
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor)
        page = admin(base, key, "GET", path)
        count += len(page["contacts"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


def check_webhooks(base, key, instance, path):
    run = result(path)
    served(run, "webhooks")
    sent_total = sum(run["sent"])
    in_flight = sent_total - run["answered"]
    sent = dict.fromkeys(webhooks.KINDS, 0)
    for thread_sent in run["sent"]:
        for kind, count in webhooks.kinds_sent(thread_sent).items():
            sent[kind] += count
    stats, undecided = settled_stats(base, key, instance, in_flight)
    listed = listed_contacts(base, key, instance)
    rule_ids = {rule["rule_id"]: rule["matched"] for rule in stats["rules"]}
    rules = {rule["name"]: rule["matched"] for rule in stats["rules"]}
    counted = {
        "meta_ad": stats["meta_ads"],
        "tiktok": rules.get("TikTok summer", 0),
        "google": rules.get("Google spring", 0),
        "unmatched": stats["unmatched"],
    }
    new = stats["new_contacts"]
    print(f"  wrk: {run['answered']} deliveries answered 200, {sent_total} sent "
          f"(<= {in_flight} in flight when it stopped)")
    print(f"  stats: {new} new contacts = {stats['meta_ads']} Meta ads + "
          f"{stats['matched_by_rules']} rule matches ({counted['tiktok']} TikTok, "
          f"{counted['google']} Google) + {stats['unmatched']} unmatched + {undecided} undecided; "
          f"listing: {listed}")
    expect(run["answered"] <= new <= sent_total,
           f"new contacts {new} outside [{run['answered']}, {sent_total}] (answered, sent)")
    expect(listed == new, f"the listing holds {listed} contacts, the counters {new}")
    expect(undecided <= in_flight, f"{undecided} contacts undecided, more than were in flight")
    expect(sum(rule_ids.values()) == stats["matched_by_rules"],
           "the rules' matches do not add up to matched_by_rules")
    for kind, count in counted.items():
        # Each delivery answered 200 was decided (its job queued before the answer).
        expect(sent[kind] - in_flight <= count <= sent[kind],
               f"{kind}: {count} counted, {sent[kind]} sent, {in_flight} in flight")
    print("  counts check: every delivery answered 200 made one contact, kinds as sent, "
          "listing = counters")


def check_statuses(base, key, instance, path):
    run = result(path)
    served(run, "statuses")
    stats = admin(base, key, "GET", f"/instances/{instance}/stats?days=2")
    print(f"  wrk: {run['answered']} status deliveries answered 200; "
          f"new contacts: {stats['new_contacts']}")
    expect(stats["new_contacts"] == 0, "a status delivery made a contact")
    print("  counts check: every status delivery answered 200, none made a contact")


def check_reads(path):
    run = result(path)
    served(run, "reads")
    print(f"  wrk: {run['answered']} stats / contacts / backfill preview reads answered 200")


def check_revenue(base, key, clicks_path, postbacks_path, warm_up):
    clicks, postbacks = result(clicks_path), result(postbacks_path)
    served(clicks, "clicks")
    served(postbacks, "postbacks")
    report = admin(base, key, "GET", "/reports/revenue?group_by=campaign")
    total = report["totals"][0]
    print(f"  report: {total['sends']} sends, {total['clicks']} clicks, "
          f"{total['conversions']} conversions, revenue {total['revenue']}")
    for name, run, extra in (("clicks", clicks, warm_up), ("conversions", postbacks, 0)):
        answered, sent, counted = run["answered"] + extra, sum(run["sent"]) + extra, total[name]
        print(f"  {name}: wrk saw {answered} answered ({sent} sent), the report counts {counted}")
        expect(answered <= counted <= sent,
               f"{name}: {counted} counted outside [{answered}, {sent}] (answered, sent)")
    print("  counts check: every answered click and postback is counted, none twice")


def row(route, path):
    run = result(path)
    rate = run["requests"] / (run["duration_us"] / 1e6)
    ms = {name: run[f"{name}_us"] / 1000 for name in ("p50", "p99", "max")}
    print(f"| {route} | {rate:,.0f} | {ms['p50']:.2f} ms | {ms['p99']:.2f} ms "
          f"| {ms['max']:.1f} ms |")


def main(args):
    command, rest = args[0], args[1:]
    if command == "rules":
        install_rules(*rest)
    elif command == "sends":
        sends_and_clicks(*rest[:2], int(rest[2]), *rest[3:])
    elif command == "webhooks":
        check_webhooks(*rest)
    elif command == "statuses":
        check_statuses(*rest)
    elif command == "reads":
        check_reads(*rest)
    elif command == "revenue":
        check_revenue(*rest[:4], int(rest[4]))
    elif command == "row":
        row(*rest)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except CheckFailed as failure:
        print(f"  COUNT CHECK FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
