#!/usr/bin/env python3
"""Whole-process benchmarks of Fabrik, each beside its floor measured in the
same run. Prints a Markdown table (the one in docs/PERFORMANCE.md).

    python3 scripts/bench.py [--quick]

Needs: a release build (`cargo build --release --examples`, done here),
GNU time at /usr/bin/time (peak memory). Machines are noisy: every figure
is the median of several runs, and each budget is checked as a ratio to a
floor measured in the same run where one exists.

--quick uses 100,000 events instead of 1,000,000 (for a smoke test).
It ends with the round-trip table of scripts/roundtrips.py.
With FABRIK_TEST_POSTGRES_URL set (`eval "$(scripts/pg-test-server start)"`)
it also times a no-op apply with the journal in PostgreSQL.
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
BIN = os.path.join(ROOT, "target", "release", "fabrik")
GEN = os.path.join(ROOT, "target", "release", "examples", "journal_gen")
APPEND = os.path.join(ROOT, "target", "release", "examples", "journal_append")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "journal_floor")
QUICK = "--quick" in sys.argv
BIG = 100_000 if QUICK else 1_000_000

ENV = {k: v for k, v in os.environ.items()
       if not k.startswith(("FABRIK_", "COOLIFY_", "CLOUDFLARE_", "UPTIME_KUMA_"))}
ENV["NO_COLOR"] = "1"

rows = []


def run(args, cwd=None, env=None, check=True):
    p = subprocess.run(args, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{p.stderr}")
    return p


def timed(args, n, cwd=None, env=None):
    """Median wall time (s) of n runs."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run(args, cwd=cwd, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_kb(args, cwd=None, env=None):
    p = run(["/usr/bin/time", "-f", "%M"] + args, cwd=cwd, env=env)
    return int(p.stderr.strip().splitlines()[-1])


def row(metric, value, floor, ratio, budget, ok):
    rows.append((metric, value, floor, ratio, budget, "yes" if ok else "**no**"))
    print(f"  {metric}: {value} (floor {floor}, ratio {ratio}) budget {budget}: "
          f"{'ok' if ok else 'MISSED'}", file=sys.stderr)


def project(tmp, name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    shutil.copytree(os.path.join(ROOT, "examples", "quickstart"), os.path.join(d, "quickstart"))
    return d


def journal(tmp, name, events):
    """A project whose journal holds `events` events of 200 other
    deployments, then the quickstart applied once on the sandbox."""
    d = project(tmp, name)
    run([GEN, "--state", os.path.join(d, ".fabrik", "state.db"), "--events", str(events)])
    run([BIN, "apply", "quickstart/spec.yaml", "--sandbox", "--yes"], cwd=d)
    return d


def main():
    print("building release binaries...", file=sys.stderr)
    run(["cargo", "build", "--release", "--examples", "--bin", "fabrik"], cwd=ROOT)
    tmp = tempfile.mkdtemp(prefix="fabrik-bench-")
    try:
        version = timed([BIN, "--version"], 21)

        # Durable appends beside a raw INSERT of the same rows (alternating
        # rounds inside one process: see examples/journal_append.rs).
        for line in run([APPEND, "9"]).stdout.splitlines():
            kind = line.split(":")[0]
            fab = float(line.split("fabrik ")[1].split(" ")[0])
            raw = float(line.split("raw INSERT ")[1].split(" ")[0])
            row(f"durable appends/s, {kind}", f"{fab:,.0f}/s", f"{raw:,.0f}/s (raw INSERT)",
                f"{fab/raw:.2f}×", "≥ 0.7× floor", fab / raw >= 0.7)

        # No-op apply at 10,000 and at BIG events.
        small = journal(tmp, "small", 10_000)
        big = journal(tmp, "big", BIG)
        # The offline no-op apply (`--refresh=false`): the journal alone, no
        # provider call (a refreshed one also reads the remote side).
        noop = [BIN, "apply", "quickstart/spec.yaml", "--sandbox", "--yes", "--refresh=false"]
        t_small = timed(noop, 21, cwd=small)
        t_big = timed(noop, 21, cwd=big)
        row("no-op apply, 10,000 events", f"{t_small*1000:.1f} ms", f"{version*1000:.1f} ms (`--version`)",
            f"{t_small/version:.1f}×", "< 50 ms", t_small < 0.050)
        row(f"no-op apply, {BIG:,} events", f"{t_big*1000:.1f} ms", f"{t_small*1000:.1f} ms (at 10,000)",
            f"{t_big/t_small:.2f}×", "< 50 ms, no growth", t_big < 0.050 and t_big < t_small * 1.5)

        # No-op apply with the journal in PostgreSQL on loopback (only when
        # a server is given, e.g. by scripts/pg-test-server).
        pg = os.environ.get("FABRIK_TEST_POSTGRES_URL")
        if pg:
            d = project(tmp, "pg")
            ca = os.environ.get("FABRIK_TEST_POSTGRES_CA")
            tls = "plain text"
            if ca and "?" not in pg:
                pg += f"?sslmode=verify-full&sslrootcert={ca}"
                tls = "TLS verify-full"
            penv = dict(ENV, FABRIK_STATE=pg)
            run([BIN, "apply", "quickstart/spec.yaml", "--sandbox", "--yes"], cwd=d, env=penv)
            t_pg = timed(noop, 21, cwd=d, env=penv)
            row(f"no-op apply, PostgreSQL on loopback ({tls})", f"{t_pg*1000:.1f} ms",
                f"{t_small*1000:.1f} ms (SQLite, 10,000 events)", f"{t_pg/t_small:.1f}×", "< 100 ms",
                t_pg < 0.100)

        # status of one deployment does not grow with history.
        st_small = timed([BIN, "status", "quickstart"], 11, cwd=small)
        st_big = timed([BIN, "status", "quickstart"], 11, cwd=big)
        row(f"status DEPLOYMENT, {BIG:,} vs 10,000 events", f"{st_big*1000:.1f} ms",
            f"{st_small*1000:.1f} ms", f"{st_big/st_small:.2f}×", "no growth", st_big < st_small * 1.5)

        # replay --verify beside reading + hashing the same rows.
        db = os.path.join(big, ".fabrik", "state.db")
        t_verify = timed([BIN, "--state", db, "replay", "--verify"], 3)
        t_floor = timed([FLOOR, db], 3)
        row(f"replay --verify, {BIG:,} events", f"{t_verify:.2f} s", f"{t_floor:.2f} s (SELECT + blake3)",
            f"{t_floor/t_verify:.2f}× floor speed", "< 3 s, ≥ 0.5× floor",
            t_verify < 3 and t_floor / t_verify >= 0.5)

        # Export streams: peak memory at BIG within 10% of that at 1/10th.
        tenth = journal(tmp, "tenth", BIG // 10)
        m_big = peak_kb([BIN, "--state", db, "journal", "export", "--format", "ndjson", "-o", os.path.join(tmp, "big.ndjson")])
        m_tenth = peak_kb([BIN, "--state", os.path.join(tenth, ".fabrik", "state.db"), "journal", "export",
                           "--format", "ndjson", "-o", os.path.join(tmp, "tenth.ndjson")])
        row(f"export ndjson peak memory, {BIG:,} vs {BIG//10:,} events", f"{m_big/1024:.1f} MB",
            f"{m_tenth/1024:.1f} MB", f"{m_big/m_tenth:.2f}×", "within 10%", m_big <= m_tenth * 1.10)

        # Parallel DNS: 10 independent records vs 1, sandbox latency 100 ms.
        counter = iter(range(1000))

        def provisioning(records):
            d = project(tmp, f"dns{records}-{next(counter)}")
            spec = os.path.join(d, "quickstart", "spec.yaml")
            text = open(spec).read()
            recs = "".join(f"    - type: A\n      name: r{i}.example.com\n      content: 203.0.113.{i+20}\n"
                           for i in range(records))
            text = text.replace("    - type: A\n      name: quickstart.example.com\n      content: 203.0.113.10\n", recs)
            open(spec, "w").write(text)
            env = dict(ENV, FABRIK_SANDBOX_FAULTS="latency_ms=100,target=/client/v4")
            p = run([BIN, "--output", "json", "apply", "quickstart/spec.yaml", "--sandbox", "--yes"], cwd=d, env=env)
            ev = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
            at = {}
            for e in ev:
                if e.get("type") == "run_state_changed":
                    at[e["payload"]["to"]] = e["at"]
            from datetime import datetime
            f = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
            return f(at["DEPLOYING"]) - f(at["PROVISIONING"])
        one = statistics.median(provisioning(1) for _ in range(3))
        ten = statistics.median(provisioning(10) for _ in range(3))
        row("provisioning 10 independent DNS records, latency 100 ms", f"{ten*1000:.0f} ms",
            f"{one*1000:.0f} ms (1 record: the critical path)", f"{ten/one:.2f}×", "≤ 1.5×", ten <= one * 1.5)

        # Peak memory of an apply (the sandbox in its own process).
        sb = project(tmp, "mem")
        serve = subprocess.Popen([BIN, "sandbox", "serve", "--addr", "127.0.0.1:0", "--data",
                                  os.path.join(sb, "world.db")], env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        try:
            info = json.loads(serve.stdout.readline())
            env = dict(ENV, COOLIFY_URL=info["coolify_url"], COOLIFY_TOKEN="sandbox-coolify-token",
                       CLOUDFLARE_API_URL=info["cloudflare_url"], CLOUDFLARE_API_TOKEN="sandbox-cloudflare-token",
                       UPTIME_KUMA_URL=info["kuma_url"], UPTIME_KUMA_USERNAME="admin",
                       UPTIME_KUMA_PASSWORD="sandbox-kuma-password", FABRIK_SANDBOX_URL=info["api_url"])
            mem = peak_kb([BIN, "apply", "quickstart/spec.yaml", "--yes"], cwd=sb, env=env)
        finally:
            serve.terminate()
            serve.wait()
        row("peak memory of apply (quickstart, sandbox in another process)", f"{mem/1024:.1f} MB", "—", "—",
            "< 30 MB", mem < 30 * 1024)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("| metric | Fabrik | floor (same run) | ratio | budget | met |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")

    # Sequential round trips against the sandbox with injected latency.
    print()
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "roundtrips.py"), "--bin", BIN], check=True)


if __name__ == "__main__":
    main()
