#!/usr/bin/env python3
"""A minimal Lambda Runtime API on 127.0.0.1, to time a function's cold start.

    fake_runtime.py time --runs 21 [--log FILE] [--label NAME] -- BOOTSTRAP [ARGS...]

Starts BOOTSTRAP (a Lambda custom-runtime binary) RUNS times with AWS_LAMBDA_RUNTIME_API
pointing here and the rest of the environment inherited, and measures each start from just
before exec to the arrival of its first `GET /2018-06-01/runtime/invocation/next`: that request
is what a runtime sends once its init code has run, so the interval is the function's init
time as Lambda counts it (less the sandbox's own start). The process is then killed; no event
is delivered. Prints one JSON object: {"runs": [ms...], "median_ms", "min_ms", "max_ms",
"cpu_ms": [...], "cpu_median_ms"} (cpu: the CPU time all the process's threads used up to
that request, from /proc/PID/task/*/schedstat: what init costs, whatever else the machine
runs); with --label, also "function" and, on stderr, a row "NAME min median max cpu".
With --floor FILE (the JSON a run of the floor binary printed), also "x_floor_median" and
"x_floor_cpu": this binary's median init time and CPU over the floor's, and on the row.
A start that exits, or sends nothing within --timeout seconds, fails the whole measurement
(exit 1) with the tail of the function's output.

Only the standard library: it runs under any python3.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NEXT_PATH = "/2018-06-01/runtime/invocation/next"


class Runtime(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections from a killed runtime must not keep the server from closing.
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.first_next = threading.Event()
        self.first_next_ns = None
        self.release = threading.Event()

    def reset(self):
        with self.lock:
            self.first_next.clear()
            self.first_next_ns = None
            # Unblock the previous run's pending `next` so its handler thread ends.
            self.release.set()
            self.release = threading.Event()

    def mark_next(self):
        now = time.perf_counter_ns()
        with self.lock:
            if self.first_next_ns is None:
                self.first_next_ns = now
                self.first_next.set()
            return self.release


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == NEXT_PATH:
            release = self.server.mark_next()
            # Long poll, as Lambda does while no event is waiting; the runtime is killed
            # before this returns.
            release.wait(60)
            self.reply(204, b"")
        else:
            self.reply(404, b'{"errorMessage":"not found"}')

    def do_POST(self):
        # /runtime/init/error, /runtime/invocation/{id}/error: read the body, acknowledge.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.reply(202, b'{"status":"OK"}')

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(data[-lines:])
    except OSError:
        return ""


def cpu_ns(pid):
    """CPU time the process has used so far, all its threads, in ns (Linux schedstat)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def time_starts(args):
    server = Runtime()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address
    env = dict(os.environ)
    env["AWS_LAMBDA_RUNTIME_API"] = f"{host}:{port}"
    log_path = args.log or os.devnull
    runs, cpu = [], []
    with open(log_path, "ab") as log:
        for _ in range(args.runs):
            server.reset()
            start = time.perf_counter_ns()
            proc = subprocess.Popen(
                args.command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
            deadline = time.monotonic() + args.timeout
            got = False
            while time.monotonic() < deadline:
                if server.first_next.wait(0.005):
                    got = True
                    break
                if proc.poll() is not None:
                    break
            elapsed_ns = (server.first_next_ns or 0) - start
            cpu.append(cpu_ns(proc.pid) / 1e6)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if not got:
                log.flush()
                why = (
                    f"exited with status {proc.returncode}"
                    if proc.returncode not in (None, -signal.SIGKILL)
                    else f"sent no `next` within {args.timeout} s"
                )
                print(f"fake_runtime: {args.command[0]} {why}", file=sys.stderr)
                if args.log:
                    print(tail(args.log), file=sys.stderr)
                return 1
            runs.append(elapsed_ns / 1e6)
    server.shutdown()
    result = {
        "runs": [round(r, 2) for r in runs],
        "median_ms": round(statistics.median(runs), 2),
        "min_ms": round(min(runs), 2),
        "max_ms": round(max(runs), 2),
        "cpu_ms": [round(c, 2) for c in cpu],
        "cpu_median_ms": round(statistics.median(cpu), 2),
    }
    ratios = ""
    if args.floor:
        with open(args.floor) as f:
            floor = json.loads(f.read().strip().splitlines()[-1])
        result["x_floor_median"] = round(result["median_ms"] / floor["median_ms"], 1)
        result["x_floor_cpu"] = round(result["cpu_median_ms"] / floor["cpu_median_ms"], 1)
        ratios = f" {result['x_floor_median']:>8.1f}x {result['x_floor_cpu']:>6.1f}x"
    if args.label:
        result = {"function": args.label, **result}
        print(
            f"{args.label:<12} {result['min_ms']:>8.1f} {result['median_ms']:>10.1f} "
            f"{result['max_ms']:>8.1f} {result['cpu_median_ms']:>10.1f}{ratios}",
            file=sys.stderr,
        )
    print(json.dumps(result))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("time", help="time exec -> first `next`, RUNS times")
    t.add_argument("--runs", type=int, default=21)
    t.add_argument("--timeout", type=float, default=20.0, help="seconds per start")
    t.add_argument("--log", help="append the function's stdout/stderr here")
    t.add_argument("--label", help="name the result (a row on stderr, a field in the JSON)")
    t.add_argument("--floor", help="the floor binary's JSON result: print the ratios to it")
    t.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    if not args.command:
        parser.error("give the bootstrap to start after --")
    return time_starts(args)


if __name__ == "__main__":
    sys.exit(main())
