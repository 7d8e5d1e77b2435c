#!/usr/bin/env python3
"""Prices the figures of infra/capacity/expected.json (infra/scripts/capacity.sh measures them).

    python3 infra/capacity/cost.py infra/capacity/expected.json

Per operation, in US dollars, from its steady-state figures (a warm container):

    DynamoDB  = WRU x WRU_PRICE + RRU x RRU_PRICE     (units by DynamoDB's documented rules)
    SQS       = (the function's SQS calls + POLLER_CALLS if the matcher runs it) x SQS_PRICE
    Lambda    = LAMBDA_REQUEST + MEMORY_GB x DURATION_S x LAMBDA_GB_SECOND
    API GW    = HTTP_API_REQUEST for every operation that arrives over HTTP

and the month is the sum over MONTH of count x per-operation cost. Change the prices, the
durations or the month below and run it again.
"""

import json
import sys

# On-demand prices, us-east-1, as found on 2026-12-01 (sources in the README).
WRU_PRICE = 0.625 / 1e6  # DynamoDB on-demand write request unit (after the Nov 2024 cut)
RRU_PRICE = 0.125 / 1e6  # DynamoDB on-demand read request unit
SQS_PRICE = 0.40 / 1e6  # SQS standard queue request (per 64 KB chunk; every job here is < 2 KB)
LAMBDA_REQUEST = 0.20 / 1e6  # Lambda request
LAMBDA_GB_SECOND = 0.0000133334  # Lambda arm64 duration, first 7.5 billion GB-s a month
HTTP_API_REQUEST = 1.00 / 1e6  # API Gateway HTTP API request, first 300 million a month

MEMORY_GB = 256 / 1024  # template.yaml's MemorySize for every function
# Billed duration per invocation, in seconds: ASSUMED, not measured here (the Lambda part of
# the cost issue measures them): a few DynamoDB round trips of ~5-10 ms each in AWS; a backfill
# page writes its 500 contacts one transaction after the other.
# A conversion import of 500 rows records 8 rows at a time, 3 round trips each: ~190 in a row.
DURATION_S = {
    "default": 0.030,
    "backfill page of 500": 4.0,
    "conversion import of 500 rows": 1.5,
}
# Lambda's SQS poller receives and deletes every message it hands the matcher: with batches of
# one (a quiet queue) that is 2 requests a message; full batches of 10 make it 0.2.
POLLER_CALLS = 2
# What arrives over HTTP through API Gateway (the matcher's work comes from SQS).
NOT_HTTP = {"matcher"}

# The worked month: 2 million deliveries, 10 % of them new contacts (40 % Meta ads, 60 %
# pre-filled texts, as infra/scripts/load.sh mixes them), 100k clicks, 5k conversions; the
# other 1.8 million deliveries split as ASSUMED here; a little dashboard use.
MONTH = {
    "new contact, Meta ad referral": 80_000,
    "new contact, pre-filled text": 120_000,
    "its match job": 120_000,
    "later message of a known contact": 1_000_000,
    "status-only delivery": 700_000,
    "duplicate delivery": 100_000,
    "click": 100_000,
    "postback, attributed": 5_000,
    "stats read (7 days)": 1_000,
    "contacts page (50)": 1_000,
    "revenue report (by campaign)": 1_000,
    "ads report (by campaign, 30 days, every instance)": 1_000,
}


def units(figures, key):
    return sum(api[key] for api in figures["dynamodb"].values())


def costs(operation):
    steady = operation["steady"]
    name, function = operation["operation"], operation["function"]
    duration = DURATION_S.get(name, DURATION_S["default"])
    sqs_calls = sum(steady["sqs"].values()) + (POLLER_CALLS if function == "matcher" else 0)
    return {
        "dynamodb": units(steady, "documented_write_units") * WRU_PRICE
        + units(steady, "documented_read_units") * RRU_PRICE,
        "sqs": sqs_calls * SQS_PRICE,
        "lambda": LAMBDA_REQUEST + MEMORY_GB * duration * LAMBDA_GB_SECOND,
        "api": 0.0 if function in NOT_HTTP else HTTP_API_REQUEST,
    }


def money(value):
    return f"${value:,.2f}"


def main(path):
    with open(path, encoding="utf-8") as file:
        operations = json.load(file)["operations"]
    parts = ["dynamodb", "sqs", "lambda", "api"]
    print("| Operation | WRU | RRU | DynamoDB | SQS | Lambda | API Gateway | Total per million |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    priced = {}
    for operation in operations:
        cost = costs(operation)
        priced[operation["operation"]] = cost
        steady = operation["steady"]
        cells = [money(cost[part] * 1e6) for part in parts]
        print(
            f"| {operation['operation']} | {units(steady, 'documented_write_units'):g} "
            f"| {units(steady, 'documented_read_units'):g} | {' | '.join(cells)} "
            f"| {money(sum(cost.values()) * 1e6)} |"
        )
    print()
    print("| Month | Count | DynamoDB | SQS | Lambda | API Gateway | Total |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = dict.fromkeys(parts, 0.0)
    for name, count in MONTH.items():
        cost = priced[name]
        for part in parts:
            totals[part] += cost[part] * count
        cells = [money(cost[part] * count) for part in parts]
        print(f"| {name} | {count:,} | {' | '.join(cells)} | {money(sum(cost.values()) * count)} |")
    cells = [money(totals[part]) for part in parts]
    print(f"| **month** | | {' | '.join(cells)} | **{money(sum(totals.values()))}** |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "infra/capacity/expected.json")
