#!/usr/bin/env python3
"""Requests and sequential round trips of Fabrik's commands against the
sandbox. Prints a Markdown table (the one in docs/PERFORMANCE.md).

    python3 scripts/roundtrips.py [--bin PATH] [--runs N]

For each scenario (the quickstart example; a spec with 10 DNS records and
3 monitors) and command (first apply, update of the image tag, resume of a
run whose deployment failed under --no-rollback, destroy), the command runs
with the sandbox's injected latency at 0 ms and at 100 ms on every provider
request (Coolify, Cloudflare, Uptime Kuma; not the deployed app's checks).
It reports:

- wall time at 0 and 100 ms (median of --runs, default 3);
- sequential round trips, (t100 - t0) / 100 ms: the requests the command
  waits for one after another;
- total requests, from the sandbox's request trace (FABRIK_SANDBOX_TRACE);
- waves: the requests of the 100 ms run grouped by arrival (a request that
  arrives less than 100 ms after the first of the current group is in it),
  the same figure read from the trace;
- the critical path (CRITICAL below) and whether the sequential round trips
  are within 1.25 times it.

Uses the debug binary by default (`cargo build`): the figures are
differences and counts, which the build's speed does not change.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = sys.argv[1:]
BIN = ARGS[ARGS.index("--bin") + 1] if "--bin" in ARGS else os.path.join(ROOT, "target", "debug", "fabrik")
RUNS = int(ARGS[ARGS.index("--runs") + 1]) if "--runs" in ARGS else 3
LATENCY_MS = 100

ENV = {k: v for k, v in os.environ.items()
       if not k.startswith(("FABRIK_", "COOLIFY_", "CLOUDFLARE_", "UPTIME_KUMA_"))}
ENV.update({"NO_COLOR": "1", "FABRIK_YES": "1"})

QUICKSTART = open(os.path.join(ROOT, "examples", "quickstart", "spec.yaml")).read()


def wide_spec():
    records = "".join(
        f"    - type: A\n      name: r{i}.example.com\n      content: 203.0.113.{10 + i}\n"
        for i in range(10))
    monitors = "".join(
        f"  - name: m{i}\n    url: https://wide.example.com/health\n" for i in range(3))
    return f"""name: wide
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains:
    - https://wide.example.com
  health_check:
    path: /health
dns:
  zone: example.com
  records:
    - type: A
      name: wide.example.com
      content: 203.0.113.9
{records}verify:
  http:
    - url: https://wide.example.com/health
      status: 200
monitors:
{monitors}"""


SCENARIOS = [("quickstart", QUICKSTART, "quickstart"), ("10 records, 3 monitors", wide_spec(), "wide")]

# The critical path of each command, in round trips: the longest chain of
# requests each of which needs the answer of the one before (docs/PERFORMANCE.md
# lists each chain). Uptime Kuma is sent one call at a time on its socket, so
# three monitors are three links.
CRITICAL = {
    ("quickstart", "first apply"): 8,
    ("quickstart", "update"): 5,
    ("quickstart", "resume"): 5,
    ("quickstart", "destroy"): 4,
    ("10 records, 3 monitors", "first apply"): 10,
    ("10 records, 3 monitors", "update"): 5,
    ("10 records, 3 monitors", "resume"): 5,
    ("10 records, 3 monitors", "destroy"): 5,
}
GOAL = 1.25


def fabrik(cwd, args, latency, trace=None, faults=None, check=True):
    env = dict(ENV)
    spec_faults = f"latency_ms={latency}"
    if faults:
        spec_faults += "," + faults
    env["FABRIK_SANDBOX_FAULTS"] = spec_faults
    if trace:
        env["FABRIK_SANDBOX_TRACE"] = trace
    t = time.perf_counter()
    p = subprocess.run([BIN] + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    if check and p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stderr}")
    return elapsed


def trace_of(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def waves(requests):
    """Groups of requests that arrived within one latency of the group's
    first: how many times the command waited for an answer."""
    n, start = 0, None
    for ms in sorted(r["ms"] for r in requests):
        if start is None or ms - start >= LATENCY_MS:
            n, start = n + 1, ms
    return n


def measure(spec, name, command, latency, trace):
    """Runs `command` once in a fresh project brought to where it starts;
    returns the wall time of the command alone."""
    d = tempfile.mkdtemp()
    try:
        with open(os.path.join(d, "spec.yaml"), "w") as f:
            f.write(spec)
        apply = ["apply", "spec.yaml", "--sandbox"]
        if command == "first apply":
            return fabrik(d, apply, latency, trace)
        fabrik(d, apply, 0)
        if command == "update":
            with open(os.path.join(d, "spec.yaml"), "w") as f:
                f.write(spec.replace("whoami:v1.10", "whoami:v1.9"))
            return fabrik(d, apply, latency, trace)
        if command == "destroy":
            return fabrik(d, ["destroy", name, "--sandbox"], latency, trace)
        if command == "resume":
            with open(os.path.join(d, "spec.yaml"), "w") as f:
                f.write(spec.replace("whoami:v1.10", "whoami:v1.9"))
            fabrik(d, apply + ["--no-rollback"], 0, faults="deploy_fail=true", check=False)
            return fabrik(d, ["resume", name, "--sandbox"], latency, trace)
        raise ValueError(command)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    if not os.path.exists(BIN):
        subprocess.run(["cargo", "build"], cwd=ROOT, check=True)
    print("| scenario | command | wall at 0 ms | wall at 100 ms | sequential round trips | waves in the trace "
          f"| critical path | within {GOAL}× | requests |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, spec, name in SCENARIOS:
        for command in ["first apply", "update", "resume", "destroy"]:
            t0 = statistics.median(measure(spec, name, command, 0, None) for _ in range(RUNS))
            t100s, counts, wave_counts = [], [], []
            for _ in range(RUNS):
                trace = tempfile.mktemp(suffix=".ndjson")
                t100s.append(measure(spec, name, command, LATENCY_MS, trace))
                reqs = [r for r in trace_of(trace) if r["service"] != "apps"]
                counts.append(len(reqs))
                wave_counts.append(waves(reqs))
                os.unlink(trace) if os.path.exists(trace) else None
            t100 = statistics.median(t100s)
            rt = (t100 - t0) / (LATENCY_MS / 1000)
            critical = CRITICAL[(label, command)]
            met = "yes" if rt <= GOAL * critical else "no"
            print(f"| {label} | {command} | {t0 * 1000:.0f} ms | {t100 * 1000:.0f} ms | {rt:.1f} "
                  f"| {statistics.median(wave_counts):.0f} | {critical} | {met} "
                  f"| {statistics.median(counts):.0f} |", flush=True)


if __name__ == "__main__":
    main()
