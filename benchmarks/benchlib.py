"""Helpers shared by the benchmark scripts (storm.py, scale.py): console output, /proc readings and
medians. Python 3 standard library only; Linux only (reads /proc)."""

import json
import os
import statistics
import subprocess
import sys

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


class DaemonDir:
    """A certfleetd state directory with its configuration file, initialised by `certfleet init`:
    `dir`, `state`, `config`, `log_path`. `daemon_settings` become the [daemon] section."""

    def __init__(self, bins, root, name, daemon_settings):
        self.bins = bins
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "certfleet.toml")
        self.log_path = os.path.join(self.dir, "certfleetd.log")
        lines = [f'state_dir = "{self.state}"', "[log]", 'level = "info"', "[daemon]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in daemon_settings.items()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run([bins["cli"], "-c", self.config, "init"], check=True,
                       stdout=subprocess.DEVNULL)
        self.proc = None
