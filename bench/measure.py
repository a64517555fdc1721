"""How the benchmark measures one command: wall time, the CPU time (user + sys) of the
command and of every process it waited for (the engine's language host, Python and provider
plugins included), the peak memory of its process tree, and the machine's load meanwhile."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    wall: float  # seconds
    cpu: float  # user + sys seconds of the process and its waited-for descendants
    peak_mib: float  # largest sum of the RSS of the process tree, sampled every 0.1 s
    load: float  # 1-minute load average when the command ended


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    sample: Sample


class CommandFailed(RuntimeError):
    pass


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int) -> float:
    """RSS of `root` and all its descendants, MiB."""
    tree = _children()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo.extend(tree.get(pid, ()))
    return total / 1024


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 1800,
) -> Result:
    """Runs `argv` and measures it. The CPU time comes from wait4() on the process itself:
    the kernel adds to it the CPU of every descendant that was waited for (the engine waits
    for its plugins, the language host for Python)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    stop = threading.Event()

    def sample_memory() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_mib(proc.pid))
            stop.wait(0.1)

    out: dict[str, str] = {}

    def read(name: str, stream) -> None:
        out[name] = stream.read()

    threads = [
        threading.Thread(target=sample_memory, daemon=True),
        threading.Thread(target=read, args=("stdout", proc.stdout), daemon=True),
        threading.Thread(target=read, args=("stderr", proc.stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    if input is not None:
        assert proc.stdin is not None
        proc.stdin.write(input)
        proc.stdin.close()
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # Ctrl-C: leave no command running
        proc.kill()
        os.wait4(proc.pid, 0)
        raise
    finally:
        killer.cancel()
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    result = Result(
        proc.returncode,
        out.get("stdout", ""),
        out.get("stderr", ""),
        Sample(wall, usage.ru_utime + usage.ru_stime, peak, os.getloadavg()[0]),
    )
    if check and result.returncode != 0:
        tail = "\n".join(f"{result.stdout}\n{result.stderr}".strip().splitlines()[-60:])
        raise CommandFailed(f"`{' '.join(argv)}` exited {result.returncode}:\n{tail}")
    return result


def combine(*samples: Sample) -> Sample:
    """Commands run one after the other, as one measurement."""
    return Sample(
        sum(s.wall for s in samples),
        sum(s.cpu for s in samples),
        max(s.peak_mib for s in samples),
        samples[-1].load,
    )


@dataclass
class Series:
    """The runs of one measurement: the first (cold) apart, the rest summarised."""

    samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def cold(self) -> Sample:
        return self.samples[0]

    @property
    def warm(self) -> list[Sample]:
        return self.samples[1:] or self.samples

    def median(self, attr: str = "wall") -> float:
        return statistics.median(getattr(s, attr) for s in self.warm)

    def min(self, attr: str = "wall") -> float:
        return min(getattr(s, attr) for s in self.warm)

    def spread(self) -> float:
        """(max - min) / median of the warm runs' wall times."""
        walls = [s.wall for s in self.warm]
        return (max(walls) - min(walls)) / statistics.median(walls)


def machine() -> str:
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} cores, {mem}, {platform.system()} {platform.machine()}"


def loads(samples: list[Sample]) -> str:
    """The 1-minute load average over a set of runs, as `median (min-max)`."""
    values = [s.load for s in samples]
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"
