#!/usr/bin/env python3
"""Connection storms over the real certfleet binaries.

Runs `certfleet-agent fleet` (one or two processes) and `certfleetd` on this machine, talks to the
daemon through its control socket (JSON lines, docs/control-api.md) and to the fleet through its
fault socket (docs/agent.md), and measures:

  registration  N servers added with expected thumbprints until all are `trusted`
  connect       daemon restart until all N are connected and collected, full handshakes (the
                persisted TLS sessions are deleted before the start); handshake and collection
                latency p50/p99 from the daemon's `status`, RSS with N connected
  resumed       the same after a plain restart: SIGTERM saved the TLS sessions, the new daemon
                loads them and resumes (`resumed_handshakes` counts how many did)
  reconnect     every fleet connection dropped (fault offline + online) without restarting the
                daemon, until all N are connected and collected again
  stalled       (--stalled-subscriber) the connect storm again with an events subscriber on the
                control socket that never reads
  rotation      (--rotation) `cert renew` with all N connected: until every server moved to the
                new manager certificate, the old key is destroyed and every agent dropped the old
                certificate
  limit         certfleet-handshake-limit --seconds S (full), right before each connect storm
  scale         daemon RSS with M registered idle servers (addresses where nothing listens) and the
                time from daemon start to its "loaded M servers" log line

Everything listens and connects on 127.0.0.0/8 only. Python 3 standard library only. Prints a
progress line while it runs, then a table, and writes everything to a JSON file.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from benchlib import (DaemonDir, REPO, prepare_workdir, cpu_seconds, loadavg, log, median, progress,
                      rss_kib)

FLEET_SPLIT_ABOVE = 9000  # one fleet process needs about N + 100 descriptors; hard limit 20,000
PASSWORD = "storm-fleet-secret"


class JsonLines:
    """One connection to a JSON-lines Unix socket (the daemon's control socket or fleet.sock)."""

    def __init__(self, path, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the peer closed the connection")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return json.loads(raw)

    def send(self, obj):
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def call(self, op, args=None):
        req = {"id": self.next_id, "op": op}
        self.next_id += 1
        if args is not None:
            req["args"] = args
        self.send(req)
        reply = self.line()
        if not reply.get("ok"):
            raise RuntimeError(f"{op}: {reply.get('error')}")
        return reply["result"]

    def close(self):
        self.sock.close()


def connect_when_up(path, deadline_s=60.0):
    end = time.monotonic() + deadline_s
    while True:
        try:
            c = JsonLines(path)
            c.call("status")
            return c
        except (OSError, ConnectionError, RuntimeError):
            if time.monotonic() > end:
                raise
            time.sleep(0.01)


def per_state(status):
    ps = status.get("per_state", {})
    if isinstance(ps, list):
        ps = {k: v for k, v in ps}
    return ps


class Sampler(threading.Thread):
    """Polls `status` every `period` s on its own connection, with CPU of the given processes."""

    def __init__(self, sock_path, pids, period, label, target):
        super().__init__(daemon=True)
        self.sock_path, self.pids, self.period = sock_path, pids, period
        self.label, self.target = label, target
        self.samples = []  # (t_monotonic, status, {pid: cpu})
        self.stop_flag = threading.Event()
        self.error = None

    def run(self):
        try:
            conn = connect_when_up(self.sock_path)
            while not self.stop_flag.is_set():
                t = time.monotonic()
                st = conn.call("status")
                cpu = {p: cpu_seconds(p) for p in self.pids}
                self.samples.append((t, st, cpu))
                done = min(1.0, st["connected"] / self.target) if self.target else 1.0
                bar = "#" * int(done * 30) + "-" * (30 - int(done * 30))
                progress(f"[{self.label}] [{bar}] {done * 100:3.0f}%  connected "
                         f"{st['connected']}/{self.target}  trusted "
                         f"{per_state(st).get('trusted', 0)}  handshakes {st['handshakes']}  "
                         f"collections {st['collections']}  failures {st['handshake_failures']}")
                self.stop_flag.wait(max(0.0, self.period - (time.monotonic() - t)))
            conn.close()
        except Exception as e:  # reported by wait_until
            self.error = e

    def wait_until(self, pred, timeout_s):
        end = time.monotonic() + timeout_s
        seen = 0
        while time.monotonic() < end:
            if self.error:
                raise self.error
            while seen < len(self.samples):
                s = self.samples[seen]
                seen += 1
                if pred(s[1]):
                    return s
            time.sleep(0.005)
        raise TimeoutError(f"{self.label}: condition not reached in {timeout_s} s; last status "
                           f"{self.samples[-1][1] if self.samples else None}")

    def finish(self):
        self.stop_flag.set()
        self.join(5)
        progress("")
        sys.stderr.write("\r\033[K")


class Fleet:
    """One or two `certfleet-agent fleet` processes covering N endpoints on 127.x addresses."""

    def __init__(self, bins, root, n):
        self.bins, self.n = bins, n
        parts = 2 if n > FLEET_SPLIT_ABOVE else 1
        self.parts = []
        pw = os.path.join(root, "admin.pw")
        with open(os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(PASSWORD + "\n")
        for k in range(parts):
            count = n // parts + (1 if k < n % parts else 0)
            d = os.path.join(root, f"fleet{k}")
            os.makedirs(d, mode=0o700, exist_ok=True)
            manifest = os.path.join(d, "manifest.json")
            if os.path.exists(manifest):
                os.unlink(manifest)
            out = open(os.path.join(root, f"fleet{k}.log"), "ab")
            proc = subprocess.Popen(
                [bins["agent"], "--state-dir", d, "fleet", "--count", str(count),
                 "--bind-range", f"127.{1 + k}.0.1", "--base-port", "9401",
                 "--admin-account", "admin", "--admin-password-file", pw],
                stdout=out, stderr=subprocess.STDOUT)
            self.parts.append({"dir": d, "proc": proc, "manifest": manifest, "count": count})
        t0 = time.monotonic()
        for p in self.parts:
            while not os.path.exists(p["manifest"]):
                if p["proc"].poll() is not None:
                    raise RuntimeError(f"fleet in {p['dir']} exited with {p['proc'].returncode}")
                if time.monotonic() - t0 > 300:
                    raise TimeoutError("fleet did not start in 300 s")
                progress(f"[fleet] starting {n} endpoints in {parts} process(es) "
                         f"({time.monotonic() - t0:.1f} s)")
                time.sleep(0.1)
            with open(p["manifest"]) as f:
                p["endpoints"] = json.load(f)["endpoints"]
        self.start_s = time.monotonic() - t0
        log(f"[fleet] {n} endpoints listening in {parts} process(es) after {self.start_s:.1f} s")

    def pids(self):
        return [p["proc"].pid for p in self.parts]

    def endpoints(self):
        return [e for p in self.parts for e in p["endpoints"]]

    def fault(self, fault):
        for p in self.parts:
            c = JsonLines(os.path.join(p["dir"], "fleet.sock"))
            c.send({"endpoint": "all", "fault": fault})
            reply = c.line()
            c.close()
            if not reply.get("ok"):
                raise RuntimeError(f"fault {fault}: {reply}")

    def stop(self):
        for p in self.parts:
            if p["proc"].poll() is None:
                p["proc"].terminate()
        for p in self.parts:
            try:
                p["proc"].wait(30)
            except subprocess.TimeoutExpired:
                p["proc"].kill()
                p["proc"].wait()


class Daemon(DaemonDir):
    """A certfleetd with its own state directory and configuration."""

    def forget_tls_sessions(self):
        """Removes the persisted TLS sessions so that the next start does full handshakes."""
        removed = []
        for name in os.listdir(self.state):
            if "session" in name and name.startswith("tls"):
                os.unlink(os.path.join(self.state, name))
                removed.append(name)
        return removed

    def stop(self):
        return super().stop(timeout_s=120)

    def log_since_start(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def log_time_of(self, needle, timeout_s):
        """Wall time (from the log line's own timestamp) of the first line holding `needle`."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for line in self.log_since_start().splitlines():
                if needle in line:
                    stamp = line.split(" ", 1)[0]
                    try:
                        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z") \
                            .timestamp(), line
                    except ValueError:
                        return time.time(), line
            if self.proc.poll() is not None:
                raise RuntimeError(f"certfleetd exited with {self.proc.returncode}; see "
                                   f"{self.log_path}")
            time.sleep(0.02)
        raise TimeoutError(f"no '{needle}' in {self.log_path} within {timeout_s} s")

    def unusual_log_lines(self, limit=20):
        keep = []
        for line in self.log_since_start().splitlines():
            if (" warn " in line or " error " in line or " critical " in line) \
                    and "retrying in" not in line:
                keep.append(line)
        return keep[:limit]


def add_bulk(conn, entries, label):
    """server.add_bulk in batches under the 64 KiB line limit; returns (added, errors)."""
    added, errors, batch, size = 0, [], [], 0

    def flush():
        nonlocal added, batch, size
        if not batch:
            return
        r = conn.call("server.add_bulk", {"servers": batch})
        added += r["added"]
        errors.extend(x["error"] for x in r["results"] if not x["ok"])
        progress(f"[{label}] added {added}/{len(entries)}")
        batch, size = [], 0

    for e in entries:
        n = len(json.dumps(e)) + 2
        if size + n > 56 * 1024:
            flush()
        batch.append(e)
        size += n
    flush()
    return added, errors


def storm_settings(args):
    return {"max_concurrent_handshakes": args.max_handshakes,
            "collect_interval_s": args.collect_interval,
            "backoff_initial_ms": 100, "backoff_max_ms": 5000, "trust_policy": "expected-only",
            "handshake_timeout_ms": 30000, "connect_timeout_ms": 10000}


def run_handshake_limit(bins, seconds):
    la = loadavg()
    out = subprocess.run([bins["limit"], "--seconds", str(seconds)], check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["load_before"], r["load_after"] = la, loadavg()
    return r


def fleet_cpu(pids):
    vals = [cpu_seconds(p) for p in pids]
    return None if any(v is None for v in vals) else sum(vals)


def connection_up_times(sock_path, since_seq):
    """time_ms of every connection_up event with seq > since_seq, from the stored events."""
    c = JsonLines(sock_path, timeout=120)
    c.send({"id": 1, "op": "events.subscribe",
            "args": {"since": since_seq, "type": "connection_up", "follow": False}})
    times = []
    while True:
        msg = c.line()
        if "event" in msg:
            times.append(msg["event"]["time_ms"])
        elif "id" in msg:
            if not msg.get("ok"):
                raise RuntimeError(f"events.subscribe: {msg.get('error')}")
            break
    c.close()
    return sorted(times)


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100.0 * len(xs) + 0.5)) - 1))]


def latency(status, kind, key):
    return ((status.get("latency") or {}).get(kind) or {}).get(key)


class StalledSubscriber:
    """An events.subscribe --follow connection that never reads after the request."""

    def __init__(self, sock_path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.sock.connect(sock_path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        self.sock.sendall(json.dumps({"id": 1, "op": "events.subscribe",
                                      "args": {"since": 0, "follow": True}}).encode() + b"\n")

    def finish(self):
        """Reads what the daemon sent; returns how the subscription ended (cut off or open)."""
        self.sock.settimeout(5)
        buf, total = b"", 0
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                buf = (buf + chunk)[-4096:]
        except OSError:
            pass
        self.sock.close()
        cut = [ln for ln in buf.split(b"\n") if b'"cutoff"' in ln]
        if cut:
            return {"bytes": total, "cutoff": json.loads(cut[-1])["cutoff"]}
        return {"bytes": total, "cutoff": None}


def restart_storm(args, d, fleet, n, label, seq_before, stalled=False):
    """Starts the (stopped) daemon and waits for all n servers connected and collected.

    Returns (result dict, sampler, last event seq)."""
    fpids = fleet.pids()
    la = loadavg()
    cpu_f0 = fleet_cpu(fpids)
    d.start()
    stall = StalledSubscriber(d.sock) if stalled else None
    s = Sampler(d.sock, [d.pid] + fpids, args.poll, label, n)
    s.start()
    end = s.wait_until(lambda st: st["connected"] >= n and st["collections"] >= n, args.timeout)
    s.finish()
    t = end[0] - d.start_mono
    st = end[1]
    cpu_d = end[2][d.pid]
    cpu_f = sum(end[2][p] for p in fpids) - cpu_f0
    ready_wall, _ = d.log_time_of("certfleetd ready", 10)
    loaded_wall, _ = d.log_time_of("loaded ", 10)
    ups = connection_up_times(d.sock, seq_before)
    ups = [u / 1000.0 - d.start_wall for u in ups if u / 1000.0 >= d.start_wall]
    res = {
        "seconds": t, "handshakes_per_second": n / t, "handshakes": st["handshakes"],
        "resumed_handshakes": st.get("resumed_handshakes"),
        "handshake_failures": st["handshake_failures"], "collections": st["collections"],
        "handshake_p50_ms": latency(st, "handshake", "p50_ms"),
        "handshake_p99_ms": latency(st, "handshake", "p99_ms"),
        "collection_p50_ms": latency(st, "collection", "p50_ms"),
        "collection_p99_ms": latency(st, "collection", "p99_ms"),
        "latency": st.get("latency"),
        "daemon_cpu_s": cpu_d, "fleet_cpu_s": cpu_f,
        "daemon_cpu_share": cpu_d / t if cpu_d is not None else None,
        "fleet_cpu_share": cpu_f / t if cpu_f else None,
        "daemon_rss_kib": rss_kib(d.pid),
        "ready_after_s": ready_wall - d.start_wall, "loaded_after_s": loaded_wall - d.start_wall,
        "time_to_connection_up_p50_s": percentile(ups, 50),
        "time_to_connection_up_p99_s": percentile(ups, 99),
        "connection_up_events": len(ups),
        "load_before": la, "load_after": loadavg(),
        "curve": [(round(x[0] - d.start_mono, 3), x[1]["connected"], x[1]["collections"])
                  for x in s.samples],
        "connection_up_s": [round(u, 4) for u in ups]}
    if stall:
        res["stalled_subscriber"] = stall.finish()
    return res, s, st["last_event_seq"]


def one_run(args, bins, root, fleet, n, run_no):
    """Registration, connect and resumed storms for one fresh daemon state directory."""
    res = {"n": n, "run": run_no, "fleet_processes": len(fleet.parts)}
    d = Daemon(bins, root, f"d{n}-{run_no}", storm_settings(args))
    fpids = fleet.pids()
    entries = [{"host": e["address"], "port": e["port"], "account": e["admin_account"],
                "password": PASSWORD, "expected_thumbprint": e["thumbprint"],
                "name": f"storm-{e['server_id']}"} for e in fleet.endpoints()[:n]]

    # 1. Registration storm.
    d.start()
    conn = connect_when_up(d.sock)
    s = Sampler(d.sock, [d.pid] + fpids, args.poll, f"N={n} run {run_no} registration", n)
    s.start()
    la = loadavg()
    t0 = time.monotonic()
    cpu_d0, cpu_f0 = cpu_seconds(d.pid), fleet_cpu(fpids)
    added, errors = add_bulk(conn, entries, f"N={n} run {run_no} registration")
    t_added = time.monotonic() - t0
    if errors:
        log(f"[registration] {len(errors)} adds failed, first: {errors[0]}")
    end = s.wait_until(lambda st: per_state(st).get("trusted", 0) >= n, args.timeout)
    s.finish()
    t = end[0] - t0
    res["registration"] = {
        "seconds": t, "servers_per_second": n / t, "add_seconds": t_added, "added": added,
        "add_errors": len(errors), "daemon_cpu_s": end[2][d.pid] - cpu_d0,
        "fleet_cpu_s": sum(end[2][p] for p in fpids) - cpu_f0, "load_before": la, "load_after": loadavg(),
        "per_state": per_state(end[1])}
    log(f"[N={n} run {run_no}] registration: {n} trusted in {t:.2f} s = {n / t:.0f}/s "
        f"(adds took {t_added:.2f} s); load {la} -> {loadavg()}")
    # Let the first collections finish so the restart starts from a quiet, fully collected fleet.
    s = Sampler(d.sock, [], args.poll, f"N={n} run {run_no} settle", n)
    s.start()
    settled = s.wait_until(lambda st: st["connected"] >= n and st["collections"] >= n,
                           args.timeout)
    s.finish()
    seq_before = settled[1]["last_event_seq"]

    # 7. (--rotation) Rotation storm: `cert renew` with all N connected, until every server moved
    # to the new manager certificate, the old key is destroyed and every agent dropped the old one.
    if args.rotation:
        la = loadavg()
        cpu_d0, cpu_f0 = cpu_seconds(d.pid), fleet_cpu(fpids)
        t0 = time.monotonic()
        conn.call("cert.renew", {})
        t_moved = None
        while time.monotonic() - t0 < args.timeout:
            r = conn.call("cert.status")
            if t_moved is None and r["moved"] >= r["servers"]:
                t_moved = time.monotonic() - t0
            if r["phase"] == "completed" and r["drops_owed"] == 0:
                break
            progress(f"[N={n} run {run_no}] rotation: {r['moved']} of {r['servers']} moved, "
                     f"{r['drops_owed']} drops owed")
            time.sleep(args.poll)
        t = time.monotonic() - t0
        res["rotation"] = {
            "seconds": t, "moved_seconds": t_moved, "servers_per_second": n / t,
            "phase": r["phase"], "moved": r["moved"], "drops_owed": r["drops_owed"],
            "daemon_cpu_s": cpu_seconds(d.pid) - cpu_d0, "fleet_cpu_s": fleet_cpu(fpids) - cpu_f0,
            "load_before": la, "load_after": loadavg()}
        log(f"[N={n} run {run_no}] rotation storm: {r['moved']} of {n} moved in "
            f"{t_moved if t_moved is not None else float('nan'):.2f} s, completed (old key "
            f"destroyed, agents told) in {t:.2f} s = {n / t:.0f} servers/s; load {la} -> "
            f"{loadavg()}")
        seq_before = conn.call("status")["last_event_seq"]
    conn.close()

    # 5. + 2. The limit right before the connect storm, then the connect storm (full handshakes:
    # the persisted TLS sessions are removed first).
    rc = d.stop()
    if rc != 0:
        log(f"[daemon] exit code {rc} after SIGTERM (expected 0)")
    progress(f"[N={n} run {run_no}] handshake limit, {args.limit_seconds} s ...")
    limit = run_handshake_limit(bins, args.limit_seconds)
    res["limit"] = limit
    removed = d.forget_tls_sessions()
    res["connect"], s, seq_after = restart_storm(args, d, fleet, n, f"N={n} run {run_no} connect",
                                                 seq_before)
    res["connect"]["tls_session_files_removed"] = removed
    res["connect"]["ratio_to_limit"] = (res["connect"]["handshakes_per_second"] /
                                        limit["handshakes_per_second"])
    c = res["connect"]
    log(f"[N={n} run {run_no}] connect storm: {n} in {c['seconds']:.2f} s = "
        f"{c['handshakes_per_second']:.0f}/s, limit {limit['handshakes_per_second']:.0f}/s, ratio "
        f"{c['ratio_to_limit']:.2f}; handshake p50/p99 {fmt(c['handshake_p50_ms'])}/"
        f"{fmt(c['handshake_p99_ms'])} ms, collection p99 {fmt(c['collection_p99_ms'])} ms; "
        f"CPU daemon {c['daemon_cpu_s']:.1f} s fleet {c['fleet_cpu_s']:.1f} s; "
        f"load {c['load_before']} -> {c['load_after']}")

    # 4. Resumed storm after a daemon restart: SIGTERM saves the TLS sessions, the next start
    # loads them and resumes.
    rc = d.stop()
    if rc != 0:
        log(f"[daemon] exit code {rc} after SIGTERM (expected 0)")
    res["restart_resumed"], s, seq_after = restart_storm(
        args, d, fleet, n, f"N={n} run {run_no} resumed after restart", seq_after)
    r = res["restart_resumed"]
    r["ratio_to_connect"] = r["handshakes_per_second"] / c["handshakes_per_second"]
    log(f"[N={n} run {run_no}] resumed storm after a daemon restart: {n} in {r['seconds']:.2f} s = "
        f"{r['handshakes_per_second']:.0f}/s ({r['resumed_handshakes']} resumed), "
        f"{r['ratio_to_connect']:.2f}x the connect storm")

    # 6. The connect storm again with an events subscriber that never reads.
    if args.stalled_subscriber:
        rc = d.stop()
        d.forget_tls_sessions()
        res["connect_stalled"], s, seq_after = restart_storm(
            args, d, fleet, n, f"N={n} run {run_no} connect, stalled subscriber", seq_after,
            stalled=True)
        r = res["connect_stalled"]
        r["ratio_to_connect"] = r["handshakes_per_second"] / c["handshakes_per_second"]
        log(f"[N={n} run {run_no}] connect storm with a stalled subscriber: "
            f"{r['handshakes_per_second']:.0f}/s = {r['ratio_to_connect']:.2f}x the clean one; "
            f"subscriber: {r['stalled_subscriber']}")

    # 3. Reconnect storm: drop every connection without restarting the daemon.
    base = s.samples[-1][1]
    s = Sampler(d.sock, [d.pid] + fpids, args.poll, f"N={n} run {run_no} reconnect", n)
    s.start()
    time.sleep(args.poll * 2)
    base = s.samples[-1][1]
    la = loadavg()
    cpu_d0, cpu_f0 = cpu_seconds(d.pid), fleet_cpu(fpids)
    t0 = time.monotonic()
    fleet.fault("offline")
    fleet.fault("online")
    t_fault = time.monotonic() - t0
    end = s.wait_until(
        lambda st: st["connected"] >= n and st["collections"] >= base["collections"] + n and
        st["handshakes"] >= base["handshakes"] + n and st["connected"] >= n, args.timeout)
    s.finish()
    t = end[0] - t0
    res["reconnect"] = {
        "seconds": t, "handshakes_per_second": n / t, "fault_seconds": t_fault,
        "handshakes": end[1]["handshakes"] - base["handshakes"],
        "handshake_failures": end[1]["handshake_failures"] - base["handshake_failures"],
        "daemon_cpu_s": end[2][d.pid] - cpu_d0,
        "fleet_cpu_s": sum(end[2][p] for p in fpids) - cpu_f0,
        "resumed_handshakes": end[1]["resumed_handshakes"] - base["resumed_handshakes"],
        "ratio_to_connect": (n / t) / res["connect"]["handshakes_per_second"],
        "load_before": la, "load_after": loadavg()}
    log(f"[N={n} run {run_no}] reconnect storm (daemon kept): {n} in {t:.2f} s = {n / t:.0f}/s "
        f"({res['reconnect']['ratio_to_connect']:.2f}x the connect storm); load {la} -> {loadavg()}")
    res["unusual_log_lines"] = d.unusual_log_lines()
    rc = d.stop()
    res["daemon_exit_code"] = rc
    if not args.keep:
        shutil.rmtree(d.dir, ignore_errors=True)
    return res


def scale_run(args, bins, root, m):
    """RSS and load time with m registered servers at loopback addresses where nothing listens."""
    settings = {"max_concurrent_handshakes": args.max_handshakes, "collect_interval_s": 3600,
                "backoff_initial_ms": 600000, "backoff_max_ms": 600000,
                "trust_policy": "expected-only", "connect_timeout_ms": 1000,
                "handshake_timeout_ms": 2000}
    d = Daemon(bins, root, f"scale{m}", settings)
    out = {"servers": m, "settings": settings}
    d.start()
    conn = connect_when_up(d.sock)
    entries = [{"host": f"127.{9 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}", "port": 9, "account": "admin",
                "password": PASSWORD, "name": f"idle-{i}",
                "expected_thumbprint": "%064X" % (i + 1)} for i in range(m)]
    la = loadavg()
    t0 = time.monotonic()
    added, errors = add_bulk(conn, entries, f"scale {m}")
    out["add_seconds"] = time.monotonic() - t0
    out["adds_per_second"] = m / out["add_seconds"]
    out["add_errors"] = len(errors)
    out["rss_after_adds_kib"] = rss_kib(d.pid)
    out["add_load"] = [la, loadavg()]
    log(f"[scale] {added} servers added in {out['add_seconds']:.1f} s; RSS "
        f"{out['rss_after_adds_kib'] / 1024:.0f} MiB")
    conn.close()
    d.stop()
    runs = []
    for r in range(args.scale_restarts):
        la = loadavg()
        d.start()
        loaded_wall, line = d.log_time_of("loaded ", 300)
        ready_wall, _ = d.log_time_of("certfleetd ready", 300)
        time.sleep(args.settle)
        st = connect_when_up(d.sock).call("status")
        one = {"loaded_after_s": loaded_wall - d.start_wall,
               "ready_after_s": ready_wall - d.start_wall, "loaded_line": line,
               "rss_kib": rss_kib(d.pid), "cpu_s": cpu_seconds(d.pid),
               "servers": st["servers"], "per_state": per_state(st),
               "load": [la, loadavg()]}
        runs.append(one)
        log(f"[scale] restart {r + 1}: loaded {m} after {one['loaded_after_s']:.2f} s, ready after "
            f"{one['ready_after_s']:.2f} s, RSS {one['rss_kib'] / 1024:.0f} MiB after "
            f"{args.settle} s; load {la} -> {loadavg()}")
        out.setdefault("unusual_log_lines", d.unusual_log_lines())
        d.stop()
    out["restarts"] = runs
    out["loaded_after_s_median"] = median([x["loaded_after_s"] for x in runs])
    out["rss_kib_median"] = median([x["rss_kib"] for x in runs])
    if not args.keep:
        shutil.rmtree(d.dir, ignore_errors=True)
    return out


def plot(curve_run, path_png, data_path):
    with open(data_path, "w") as f:
        f.write("# seconds_since_daemon_start connected_servers (from connection_up events)\n")
        for i, t in enumerate(curve_run["connect"]["connection_up_s"], 1):
            f.write(f"{t:.4f} {i}\n")
    if not shutil.which("gnuplot"):
        log("[plot] gnuplot not installed: wrote only " + data_path)
        return None
    n = curve_run["n"]
    script = f"""
set terminal pngcairo size 900,540 noenhanced
set output '{path_png}'
set title 'certfleetd connect storm: {n} servers, connected over time (daemon restart at 0 s)'
set xlabel 'seconds since certfleetd started'
set ylabel 'servers connected'
set grid
set key left top
plot '{data_path}' using 1:2 with lines lw 2 title 'connected (connection_up events)'
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        script = script.replace("pngcairo", "png")
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        log("[plot] gnuplot failed: " + r.stderr.strip())
        return None
    return path_png


def summarise(results):
    rows = []
    by_n = {}
    for r in results["runs"]:
        by_n.setdefault(r["n"], []).append(r)
    for n, rs in sorted(by_n.items()):
        def med(section, key):
            return median([r[section][key] for r in rs
                           if section in r and r[section].get(key) is not None])
        rows.append({
            "n": n, "runs": len(rs),
            "registration_per_s": med("registration", "servers_per_second"),
            "registration_daemon_cpu_ms": median([
                1000 * r["registration"]["daemon_cpu_s"] / n for r in rs
                if r.get("registration", {}).get("daemon_cpu_s") is not None]),
            "connect_per_s": med("connect", "handshakes_per_second"),
            "connect_s": med("connect", "seconds"),
            "limit_per_s": med("limit", "handshakes_per_second"),
            "ratio_to_limit": med("connect", "ratio_to_limit"),
            "daemon_cpu_share": med("connect", "daemon_cpu_share"),
            "fleet_cpu_share": med("connect", "fleet_cpu_share"),
            "handshake_p50_ms": med("connect", "handshake_p50_ms"),
            "handshake_p99_ms": med("connect", "handshake_p99_ms"),
            "collection_p99_ms": med("connect", "collection_p99_ms"),
            "rss_connected_kib": med("connect", "daemon_rss_kib"),
            "up_p50_s": med("connect", "time_to_connection_up_p50_s"),
            "up_p99_s": med("connect", "time_to_connection_up_p99_s"),
            "resumed_per_s": med("restart_resumed", "handshakes_per_second"),
            "resumed_ratio": med("restart_resumed", "ratio_to_connect"),
            "resumed_count": med("restart_resumed", "resumed_handshakes"),
            "reconnect_per_s": med("reconnect", "handshakes_per_second"),
            "stalled_ratio": med("connect_stalled", "ratio_to_connect"),
            "rotation_moved_s": med("rotation", "moved_seconds"),
            "rotation_s": med("rotation", "seconds"),
        })
    return rows


def fmt(x, spec=".0f"):
    return "-" if x is None else format(x, spec)


def print_table(rows, scale):
    hdr = ("N", "runs", "reg/s", "connect/s", "limit/s", "ratio", "cpu d/f", "hs p50/p99 ms",
           "coll p99 ms", "RSS MiB", "resumed/s (n)", "res/conn", "reconnect/s", "stalled",
           "rotation moved/done s")
    lines = [" | ".join(hdr)]
    for r in rows:
        rss = r["rss_connected_kib"] / 1024 if r["rss_connected_kib"] else None
        lines.append(" | ".join([
            str(r["n"]), str(r["runs"]), fmt(r["registration_per_s"]), fmt(r["connect_per_s"]),
            fmt(r["limit_per_s"]), fmt(r["ratio_to_limit"], ".2f"),
            f"{fmt(r['daemon_cpu_share'], '.2f')}/{fmt(r['fleet_cpu_share'], '.2f')}",
            f"{fmt(r['handshake_p50_ms'])}/{fmt(r['handshake_p99_ms'])}",
            fmt(r["collection_p99_ms"]), fmt(rss),
            f"{fmt(r['resumed_per_s'])} ({fmt(r['resumed_count'])})",
            fmt(r["resumed_ratio"], ".2f"), fmt(r["reconnect_per_s"]),
            fmt(r["stalled_ratio"], ".2f"),
            f"{fmt(r['rotation_moved_s'], '.2f')}/{fmt(r['rotation_s'], '.2f')}"]))
    if scale:
        lines.append(f"scale: {scale['servers']} idle servers: RSS "
                     f"{fmt(scale['rss_kib_median'] / 1024 if scale['rss_kib_median'] else None)}"
                     f" MiB, loaded after {fmt(scale['loaded_after_s_median'], '.2f')} s "
                     f"(median of {len(scale['restarts'])} restarts); adds "
                     f"{scale['adds_per_second']:.0f}/s")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--bench-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--counts", default="1000,2000", help="fleet sizes, comma-separated")
    ap.add_argument("--runs", type=int, default=3, help="runs per fleet size (medians reported)")
    ap.add_argument("--scale", type=int, default=0,
                    help="idle servers added through the control socket for an RSS/load "
                    "measurement; 0 (default) skips it: scripts/bench-scale.sh seeds 100,000 "
                    "servers far faster")
    ap.add_argument("--scale-restarts", type=int, default=3)
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds after 'loaded' before reading RSS in the scale run")
    ap.add_argument("--max-handshakes", type=int, default=256,
                    help="daemon.max_concurrent_handshakes")
    ap.add_argument("--limit-seconds", type=int, default=10)
    ap.add_argument("--collect-interval", type=int, default=30,
                    help="daemon.collect_interval_s during the storms: established servers keep "
                    "collecting while the others connect (their latency is the p99 target)")
    ap.add_argument("--stalled-subscriber", action="store_true",
                    help="run the connect storm once more with an events subscriber that never "
                    "reads")
    ap.add_argument("--rotation", action="store_true",
                    help="also time `cert renew` over all N connected servers (rotation storm)")
    ap.add_argument("--poll", type=float, default=0.1, help="status poll period, s")
    ap.add_argument("--timeout", type=float, default=600.0, help="per-phase timeout, s")
    ap.add_argument("--out", default=None, help="JSON results file")
    ap.add_argument("--plot-dir", default=os.path.join(REPO, "benchmarks", "plots"))
    ap.add_argument("--workdir", default=None, help="temp directory (default: mkdtemp in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()

    bins = {"cli": os.path.join(args.build_dir, "apps", "certfleet"),
            "daemon": os.path.join(args.build_dir, "apps", "daemon", "certfleetd"),
            "agent": os.path.join(args.build_dir, "apps", "agent", "certfleet-agent"),
            "limit": os.path.join(args.bench_dir, "benchmarks", "certfleet-handshake-limit")}
    root, bins = prepare_workdir("storm.py", bins, args.workdir, "certfleet-storm-")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_path = args.out or os.path.join(REPO, "build-bench", "bench-results", f"storm-{stamp}.json")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    results = {"date_utc": stamp, "argv": sys.argv, "nproc": os.cpu_count(),
               "load_at_start": loadavg(), "runs": [], "scale": None}

    def save():
        with open(out_path, "w") as f:
            json.dump(results, f, indent=1)

    fleet = None
    try:
        for n in [int(x) for x in args.counts.split(",") if x]:
            fleet = Fleet(bins, root, n)
            for run_no in range(1, args.runs + 1):
                results["runs"].append(one_run(args, bins, root, fleet, n, run_no))
                save()
            fleet.stop()
            fleet = None
        if args.scale:
            results["scale"] = scale_run(args, bins, root, args.scale)
            save()
    finally:
        if fleet:
            fleet.stop()
        save()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results["summary"] = summarise(results)
    if results["runs"]:
        largest = max(results["runs"], key=lambda r: (r["n"], -r["run"]))
        os.makedirs(args.plot_dir, exist_ok=True)
        png = plot(largest, os.path.join(args.plot_dir, f"connect-storm-{largest['n']}.png"),
                   os.path.join(os.path.dirname(out_path), f"connect-storm-{largest['n']}.dat"))
        results["plot"] = png
    results["load_at_end"] = loadavg()
    save()
    print_table(results["summary"], results["scale"])
    print(f"results: {out_path}")


if __name__ == "__main__":
    main()
