#!/usr/bin/env python3
"""100,000 registered idle servers: daemon RSS and load time.

For each fleet size N (--counts, default 100000):
  1. `certfleet init` a fresh state directory under a mkdtemp in /tmp;
  2. `certfleet-bench-seed` writes N trusted servers straight into its database (loopback addresses
     127.9.x.y and up, port 9 where nothing listens; see benchmarks/seed_fleet.cpp);
  3. starts `certfleetd -c CONFIG` --restarts times (default 3) and for each start measures
       loaded_s   spawn -> the daemon's "loaded N servers" log line (log timestamps, ms)
       ready_s    spawn -> "certfleetd ready" (the control socket is up; the fleet loads after it)
       wave_s     spawn -> the log line of the last server's first failed connect: every trusted
                  server tries once at start (refused at once), gated by max_concurrent_handshakes;
                  backoffs of 600 s then keep them idle
       rss/hwm    VmRSS and VmHWM from /proc/PID/status --settle seconds (default 5) after loaded,
                  and again once the wave is over (+ --settle)
       cpu        utime+stime of the daemon at those points, and over an --idle-window after them
       stop_s     SIGTERM -> exit
  4. prints a table of medians (and ranges) and writes all of it as JSON. The first start after
     seeding also replays the seed's write-ahead log (its ready_s shows it); medians of 3 starts
     are not moved by it.

A baseline with 0 servers is measured too (--no-baseline skips it), so that the cost per idle
server is (RSS(N) - RSS(0)) / N.

Everything connects to 127.0.0.0/8 only. Python 3 standard library only. The wrapper in
CERTFLEET_BENCH_DAEMON_WRAPPER (e.g. "heaptrack -o /tmp/x") is put in front of certfleetd, as in
storm.py; RSS is then read from the daemon itself, not from the wrapper.
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

from benchlib import (DaemonDir, REPO, prepare_workdir, cpu_seconds, loadavg, log, median,
                      proc_status, value_range)



def stamp_of(line):
    """Wall time of a spdlog text line ("2026-11-24T03:20:37.030+00:00 info ...")."""
    return datetime.datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class Daemon(DaemonDir):
    """A certfleetd with its own state directory and configuration (as in storm.py)."""

    def seed(self, n):
        if n == 0:
            return {"servers": 0, "seconds": 0.0}
        out = subprocess.run([self.bins["seed"], "--state-dir", self.state, "--count", str(n)],
                             check=True, stdout=subprocess.PIPE, text=True)
        return json.loads(out.stdout)


def measure_start(args, d, n):
    """One daemon start with n seeded servers; see the module comment for what is measured."""
    la = loadavg()
    d.start()
    one = {"load_before": la}
    loaded = ready = wave_end = None
    failed_once = set()
    unusual = []
    deadline = time.monotonic() + args.timeout

    def scan():
        nonlocal loaded, ready, wave_end
        for line in d.tail.new_lines():
            if "retrying in" in line:
                # "server s-1234abcd (127.9.0.1:9): cannot connect ...; retrying in N ms"
                parts = line.split(" ", 4)
                if len(parts) > 3 and parts[2] == "server":
                    failed_once.add(parts[3])
                    if wave_end is None and len(failed_once) >= n > 0:
                        wave_end = stamp_of(line)
            elif "certfleetd ready" in line:
                ready = stamp_of(line)
            elif " loaded " in line and " servers" in line:
                loaded = stamp_of(line)
                one["loaded_line"] = line.split(" ", 2)[2]
            elif " warn " in line or " error " in line or " critical " in line:
                if len(unusual) < 20:
                    unusual.append(line)

    while loaded is None or ready is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no 'loaded' line in {d.log_path} within {args.timeout} s")
        d.alive()
        scan()
        time.sleep(0.02)
    one["ready_s"] = ready - d.start_wall
    one["loaded_s"] = loaded - d.start_wall
    # Settle after the loaded line, by the log's own clock.
    while time.time() < loaded + args.settle:
        scan()
        time.sleep(0.05)
    st = proc_status(d.pid)
    one["rss_kib"] = st.get("VmRSS")
    one["hwm_kib"] = st.get("VmHWM")
    one["threads"] = st.get("Threads")
    one["cpu_s"] = cpu_seconds(d.pid)
    while n > 0 and wave_end is None:
        if time.monotonic() > deadline:
            one["wave_timeout"] = f"only {len(failed_once)} of {n} servers tried within the timeout"
            break
        d.alive()
        scan()
        time.sleep(0.05)
    if wave_end is not None:
        one["wave_s"] = wave_end - d.start_wall
        one["wave_after_loaded_s"] = wave_end - loaded
        while time.time() < wave_end + args.settle:
            time.sleep(0.05)
    st = proc_status(d.pid)
    one["rss_after_wave_kib"] = st.get("VmRSS")
    one["hwm_after_wave_kib"] = st.get("VmHWM")
    one["cpu_after_wave_s"] = cpu_seconds(d.pid)
    if args.idle_window > 0:
        c0, t0 = cpu_seconds(d.pid), time.monotonic()
        time.sleep(args.idle_window)
        c1 = cpu_seconds(d.pid)
        one["idle_cpu_percent"] = 100.0 * (c1 - c0) / (time.monotonic() - t0)
    scan()
    one["first_attempts_seen"] = len(failed_once)
    one["unusual_log_lines"] = unusual
    one["load_after"] = loadavg()
    rc = d.stop()
    stop_s = d.stop_seconds
    one["exit_code"] = rc
    one["stop_s"] = stop_s
    return one


def summarise(n, seeded, starts):
    keys = ["loaded_s", "ready_s", "wave_s", "wave_after_loaded_s", "rss_kib", "hwm_kib",
            "rss_after_wave_kib", "hwm_after_wave_kib", "cpu_s", "cpu_after_wave_s",
            "idle_cpu_percent", "stop_s", "threads"]
    out = {"servers": n, "seed": seeded, "starts": starts}
    for k in keys:
        out[k + "_median"] = median([s.get(k) for s in starts])
        out[k + "_range"] = value_range([s.get(k) for s in starts])
    return out


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def mib(kib):
    return None if kib is None else kib / 1024


def print_table(results):
    base = next((r for r in results if r["servers"] == 0), None)
    print()
    print("servers  loaded_s  ready_s  wave_s  RSS+5s MiB  HWM MiB  RSS idle MiB  B/server"
          "  cpu_s  idle cpu%  stop_s")
    for r in results:
        per = "-"
        if base and r["servers"] > 0 and r["rss_after_wave_kib_median"] is not None:
            per = fmt((r["rss_after_wave_kib_median"] - base["rss_after_wave_kib_median"]) * 1024
                      / r["servers"], ".0f")
        print(f"{r['servers']:>7}  {fmt(r['loaded_s_median']):>8}  {fmt(r['ready_s_median']):>7}"
              f"  {fmt(r['wave_s_median']):>6}  {fmt(mib(r['rss_kib_median']), '.1f'):>10}"
              f"  {fmt(mib(r['hwm_after_wave_kib_median']), '.1f'):>7}"
              f"  {fmt(mib(r['rss_after_wave_kib_median']), '.1f'):>12}  {per:>8}"
              f"  {fmt(r['cpu_after_wave_s_median']):>5}  {fmt(r['idle_cpu_percent_median'], '.1f'):>9}"
              f"  {fmt(r['stop_s_median']):>6}")
    print("medians of", len(results[0]["starts"]) if results else 0, "starts each; B/server ="
          " (idle RSS(N) - idle RSS(0)) / N")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"),
                    help="build directory holding certfleetd, certfleet and certfleet-bench-seed")
    ap.add_argument("--counts", default="100000", help="fleet sizes, comma-separated")
    ap.add_argument("--no-baseline", action="store_true", help="skip the 0-server baseline")
    ap.add_argument("--restarts", type=int, default=3, help="daemon starts per size (medians)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds after 'loaded' (and after the wave) before reading RSS")
    ap.add_argument("--idle-window", type=float, default=10.0,
                    help="seconds of idle CPU measured after the wave (0: skip)")
    ap.add_argument("--max-handshakes", type=int, default=64,
                    help="daemon.max_concurrent_handshakes (the daemon's default is 64)")
    ap.add_argument("--timeout", type=float, default=600.0, help="per-start timeout, s")
    ap.add_argument("--out", default=None, help="JSON results file")
    ap.add_argument("--workdir", default=None, help="temp directory (default: mkdtemp in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()

    bins = {"cli": os.path.join(args.build_dir, "apps", "certfleet"),
            "daemon": os.path.join(args.build_dir, "apps", "daemon", "certfleetd"),
            "seed": os.path.join(args.build_dir, "benchmarks", "certfleet-bench-seed")}
    root, bins = prepare_workdir("scale.py", bins, args.workdir, "certfleet-scale-",
                                 " (make certfleetd certfleet certfleet-bench-seed)")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or os.path.join(root, f"scale-{stamp}.json")
    settings = {"max_concurrent_handshakes": args.max_handshakes, "collect_interval_s": 3600,
                "backoff_initial_ms": 600000, "backoff_max_ms": 600000,
                "connect_timeout_ms": 1000, "handshake_timeout_ms": 2000}
    results = {"date_utc": stamp, "argv": sys.argv, "nproc": os.cpu_count(),
               "load_at_start": loadavg(), "settings": settings, "sizes": []}
    counts = [int(x) for x in args.counts.split(",") if x]
    if not args.no_baseline and 0 not in counts:
        counts = [0] + counts
    try:
        for n in counts:
            d = Daemon(bins, root, f"fleet{n}", settings)
            t0 = time.monotonic()
            seeded = d.seed(n)
            seeded["wall_s"] = time.monotonic() - t0
            log(f"[scale] seeded {n} trusted servers in {seeded['wall_s']:.1f} s")
            starts = []
            for r in range(args.restarts):
                one = measure_start(args, d, n)
                # The first start replays the seed's unsynced write-ahead log when RocksDB opens.
                one["first_after_seed"] = r == 0
                starts.append(one)
                log(f"[scale] N={n} start {r + 1}: loaded {one['loaded_s']:.2f} s, ready "
                    f"{one['ready_s']:.2f} s, wave {fmt(one.get('wave_s'))} s, RSS "
                    f"{one['rss_kib'] / 1024:.1f} MiB (+{args.settle:g} s), "
                    f"{fmt(mib(one['rss_after_wave_kib']), '.1f')} MiB idle, HWM "
                    f"{fmt(mib(one['hwm_after_wave_kib']), '.1f')} MiB; stop {one['stop_s']:.2f} s;"
                    f" load {one['load_before']} -> {one['load_after']}")
            results["sizes"].append(summarise(n, seeded, starts))
            with open(out_path, "w") as f:
                json.dump(results, f, indent=1)
            if not args.keep:
                shutil.rmtree(d.dir, ignore_errors=True)
    finally:
        with open(out_path, "w") as f:
            json.dump(results, f, indent=1)
        if not args.keep and args.workdir is None:
            if os.path.dirname(os.path.abspath(out_path)) == root:
                kept = os.path.join(os.path.dirname(root), os.path.basename(out_path))
                shutil.copy2(out_path, kept)
                out_path = kept
            shutil.rmtree(root, ignore_errors=True)
    print_table(results["sizes"])
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
