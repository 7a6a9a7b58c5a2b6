"""Processes the bench starts, and the guarantee that every one of them is stopped.

Each child runs in its own session (so its own process group): stopping it signals the whole
group, which takes gunicorn's workers and Celery's pool down with their parent. Children are
stopped from ``stop_all`` — called by the orchestrator's ``finally``, by ``atexit`` and by the
SIGINT/SIGTERM handlers installed with ``install_signal_handlers`` — so a Ctrl-C, an exception or a
plain exit leaves nothing behind.

Memory figures come from ``/proc`` (no extra dependency): ``VmHWM`` is the kernel's own record of
a process's peak resident set, so no sampling can miss a spike.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path | None = None
    # Peak memory of the tree, read just before the process is stopped (pid -> (label, VmHWM kB)).
    peaks: dict[int, tuple[str, int]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


_procs: list[Proc] = []
_finished: list[Proc] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    log_dir: Path,
    cwd: Path,
    stdin: int | None = subprocess.DEVNULL,
    stdout_pipe: bool = False,
) -> Proc:
    """Start ``argv`` in a new process group, output to ``<log_dir>/<name>.log`` (or a pipe)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed when it is stopped
    popen = subprocess.Popen(
        argv,
        env=env,
        cwd=str(cwd),
        stdin=stdin,
        stdout=subprocess.PIPE if stdout_pipe else log,
        stderr=log,
        start_new_session=True,
    )
    log.close()  # the child holds its own descriptor
    proc = Proc(name=name, popen=popen, log_path=log_path)
    _procs.append(proc)
    return proc


def stop(proc: Proc, *, timeout: float = 8.0) -> None:
    """Record the tree's peak memory, then SIGTERM the process group, SIGKILL after ``timeout``."""
    if proc in _procs:
        _procs.remove(proc)
    elif proc in _finished:
        return  # already stopped (and its peaks recorded)
    if proc.alive():
        with contextlib.suppress(Exception):
            proc.peaks = {pid: (label, hwm) for pid, label, hwm in tree_peaks(proc.pid)}
    _finished.append(proc)
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=timeout)
    if pgid is not None:
        # Whatever is left in the group (a worker that ignored SIGTERM, a grandchild) goes now.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.popen.wait(timeout=2)
    if proc.popen.stdout is not None:
        with contextlib.suppress(Exception):
            proc.popen.stdout.close()


def stop_all() -> None:
    """Stop every process this bench started that is still registered (newest first)."""
    for proc in reversed(list(_procs)):
        with contextlib.suppress(Exception):
            stop(proc, timeout=5)


def finished() -> list[Proc]:
    return list(_finished)


def install_signal_handlers() -> None:
    """Ctrl-C / SIGTERM: stop the children, then exit with the conventional status."""
    atexit.register(stop_all)

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"\nbench: signal {signum}, stopping every process it started…", file=sys.stderr, flush=True)
        stop_all()
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


# --- /proc readers ----------------------------------------------------------------------------


def _status(pid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kb(value: str) -> int:
    try:
        return int(value.split()[0])
    except (IndexError, ValueError):
        return 0


def rss_kb(pid: int) -> int:
    return _kb(_status(pid).get("VmRSS", "0 kB"))


def hwm_kb(pid: int) -> int:
    return _kb(_status(pid).get("VmHWM", "0 kB"))


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads' children)."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        kids.extend(int(x) for x in text.split())
    return kids


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        for kid in children(stack.pop()):
            out.append(kid)
            stack.append(kid)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def tree_peaks(pid: int) -> list[tuple[int, str, int]]:
    """(pid, role, peak RSS kB) for ``pid`` and its descendants."""
    rows = [(pid, "main", hwm_kb(pid))]
    for kid in descendants(pid):
        rows.append((kid, "child", hwm_kb(kid)))
    return rows


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def established_per_pid(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections on local ``port`` each of ``pids`` holds open."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    counts: dict[int, int] = {}
    for pid in pids:
        n = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            counts[pid] = 0
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, proc: Proc | None = None) -> None:
    """Poll ``check`` until it is true; raise RuntimeError after ``timeout`` or if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited (status {proc.popen.returncode}); see {proc.log_path}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
