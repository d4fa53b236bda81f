"""Helpers shared by the benchmark scripts (storm.py, scale.py): console output, /proc readings and
medians. Python 3 standard library only; Linux only (reads /proc)."""

import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    """A line on stderr, replacing a progress line when stderr is a terminal."""
    sys.stderr.write(("\r\033[K" if sys.stderr.isatty() else "") + msg + "\n")
    sys.stderr.flush()


def progress(msg):
    """A line that the next progress() or log() overwrites on a terminal; a plain line otherwise."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + msg)
    else:
        sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid):
    """VmRSS, VmHWM (KiB) and thread count of a process; {} when it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
                elif key == "Threads":
                    out[key] = int(value)
    except OSError:
        pass
    return out


def rss_kib(pid):
    return proc_status(pid).get("VmRSS")


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def value_range(xs):
    xs = [x for x in xs if x is not None]
    return [min(xs), max(xs)] if xs else None


def prepare_workdir(script, bins, workdir, prefix, build_hint=""):
    """Checks that every binary in `bins` (name -> path) exists, creates the work directory
    (`workdir`, or a mkdtemp under /tmp named `prefix`), mode 0700, and copies the binaries into
    its bin/: a rebuild of the build directory during a run (it happened) would otherwise fail the
    next daemon restart or mix two builds in one result. Returns (root, bins pointing at the
    copies); exits naming the first missing binary."""
    for p in bins.values():
        if not os.access(p, os.X_OK):
            sys.exit(f"{script}: {p} is missing; build it first{build_hint}")
    root = workdir or tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o700)
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    copies = {k: shutil.copy2(p, os.path.join(root, "bin", os.path.basename(p)))
              for k, p in bins.items()}
    return root, copies


def daemon_pid(proc, daemon_path):
    """The certfleetd process: proc itself, or the child a wrapper (heaptrack) started."""
    name = os.path.basename(daemon_path)[:15]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        candidates = [proc.pid]
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                candidates += [int(x) for x in f.read().split()]
        except OSError:
            pass
        for pid in list(candidates):
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    candidates += [int(x) for x in f.read().split()]
            except OSError:
                pass
        for pid in candidates:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == name:
                        return pid
            except OSError:
                pass
        time.sleep(0.05)
    return proc.pid


class LogTail:
    """Reads a growing log incrementally, so that polling a 15 MB log costs the daemon nothing."""

    def __init__(self, path, offset):
        self.path = path
        self.offset = offset
        self.partial = b""

    def new_lines(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [x.decode(errors="replace") for x in lines]


class DaemonDir:
    """A certfleetd state directory with its configuration file, initialised by `certfleet init`:
    `dir`, `state`, `config`, `log_path`, `sock`. `daemon_settings` become the [daemon] section.

    start() runs certfleetd on it, behind the wrapper in CERTFLEET_BENCH_DAEMON_WRAPPER if set (e.g.
    "heaptrack -o /tmp/x"); `pid` is then the daemon's own, not the wrapper's, so /proc readings
    are the daemon's. stop() sends SIGTERM and waits."""

    def __init__(self, bins, root, name, daemon_settings):
        self.bins = bins
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "certfleet.toml")
        self.log_path = os.path.join(self.dir, "certfleetd.log")
        self.sock = os.path.join(self.state, "control.sock")
        lines = [f'state_dir = "{self.state}"', "[log]", 'level = "info"', "[daemon]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in daemon_settings.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run([bins["cli"], "-c", self.config, "init"], check=True,
                       stdout=subprocess.DEVNULL)
        self.proc = None
        self.pid = None
        self.stop_seconds = None

    def start(self):
        """Starts the daemon; returns the wall-clock time (s since epoch) of the spawn. `tail`
        then reads the log lines written since, `log_offset` is where they begin."""
        self.log_offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.tail = LogTail(self.log_path, self.log_offset)
        wrapper = shlex.split(os.environ.get("CERTFLEET_BENCH_DAEMON_WRAPPER", ""))
        with open(self.log_path, "ab") as out:
            self.start_wall = time.time()
            self.start_mono = time.monotonic()
            self.proc = subprocess.Popen(wrapper + [self.bins["daemon"], "-c", self.config],
                                         stdout=out, stderr=subprocess.STDOUT)
        self.pid = daemon_pid(self.proc, self.bins["daemon"]) if wrapper else self.proc.pid
        return self.start_wall

    def stop(self, timeout_s=300):
        """SIGTERM, then waits up to timeout_s (then SIGKILL, reported as a bug). Returns the exit
        code; `stop_seconds` is how long the exit took."""
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log(f"[daemon] did not stop within {timeout_s} s of SIGTERM: killing it "
                    "(a bug to report)")
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        self.stop_seconds = time.monotonic() - t0
        return rc

    def alive(self):
        """Raises if the daemon has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"certfleetd exited with {self.proc.returncode}; see {self.log_path}")
