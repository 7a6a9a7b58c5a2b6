#!/usr/bin/env python3
"""Run Parley's systemd units where no systemd is running (containers, CI machines).

install.sh uses systemd when it is the running service manager. Where it is not, this script starts
each unit's own commands the way systemd would, read from the unit file itself, so what runs is what
the unit says:

    run_unit.py start /etc/systemd/system/parley-web.service ...   # ExecStartPre, then ExecStart
    run_unit.py stop parley-web parley-worker ...                  # KillSignal, then SIGKILL
    run_unit.py status                                             # which ones run
    run_unit.py exec --env-file /etc/parley/parley.env --user parley --chdir /opt/parley -- CMD ...

Honoured: User, Group, WorkingDirectory, EnvironmentFile, Environment, RuntimeDirectory,
ExecStartPre, ExecStart, KillSignal, TimeoutStopSec. Not honoured: Restart (nothing restarts a
process that dies), the sandboxing options (ProtectSystem, PrivateTmp, NoNewPrivileges), start
ordering. Output goes to /var/log/parley/<unit>.log. Standard library only: it runs on the system
Python before Parley's virtualenv exists.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE_DIR = Path(os.environ.get("PARLEY_UNIT_STATE_DIR", "/run/parley-units"))
LOG_DIR = Path(os.environ.get("PARLEY_UNIT_LOG_DIR", "/var/log/parley"))
UNIT_DIR = Path("/etc/systemd/system")


def parse_unit(path: Path) -> dict[str, list[str]]:
    """The [Service] section as ``{key: [values in order]}`` (keys may repeat in unit files)."""
    section = ""
    service: dict[str, list[str]] = {}
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Service" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        service.setdefault(key.strip(), []).append(value.strip())
    return service


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (comments, blank lines, quotes)."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def _environment(service: dict[str, list[str]]) -> dict[str, str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for spec in service.get("EnvironmentFile", []):
        optional = spec.startswith("-")
        path = Path(spec.lstrip("-"))
        if path.exists():
            env.update(read_env_file(path))
        elif not optional:
            raise SystemExit(f"EnvironmentFile {path} does not exist")
    for spec in service.get("Environment", []):
        for item in shlex.split(spec):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def _demote(user: str | None, group: str | None):
    if not user:
        return None
    entry = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid

    def apply() -> None:
        os.setgid(gid)
        os.initgroups(user, gid)
        os.setuid(entry.pw_uid)

    return apply


def _home(user: str | None) -> dict[str, str]:
    if not user:
        return {}
    entry = pwd.getpwnam(user)
    return {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user}


def _argv(command: str) -> list[str]:
    # Leading "-", "@", "+", "!" prefixes change how systemd treats a command; none is used here.
    return shlex.split(command.lstrip("-@+!"))


def _pid_file(name: str) -> Path:
    return STATE_DIR / f"{name}.pid"


def _running(name: str) -> int | None:
    try:
        pid = int(_pid_file(name).read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def start(path: Path) -> None:
    name = path.name.removesuffix(".service")
    if _running(name):
        print(f"{name}: already running")
        return
    service = parse_unit(path)
    user = (service.get("User") or [None])[-1]
    group = (service.get("Group") or [None])[-1]
    cwd = (service.get("WorkingDirectory") or ["/"])[-1]
    env = {**_environment(service), **_home(user)}
    entry = pwd.getpwnam(user) if user else None
    for spec in service.get("RuntimeDirectory", []):
        for rel in spec.split():
            directory = Path("/run") / rel
            directory.mkdir(parents=True, exist_ok=True)
            if entry:
                os.chown(directory, entry.pw_uid, entry.pw_gid)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    for command in service.get("ExecStartPre", []):
        done = subprocess.run(  # noqa: S603 - the unit's own command
            _argv(command), cwd=cwd, env=env, preexec_fn=_demote(user, group), stdout=log, stderr=log, check=False
        )
        if done.returncode != 0 and not command.startswith("-"):
            raise SystemExit(f"{name}: ExecStartPre failed ({done.returncode}): {command}; see {LOG_DIR / name}.log")
    (command,) = service["ExecStart"][-1:]
    child = subprocess.Popen(  # noqa: S603 - the unit's own command
        _argv(command),
        cwd=cwd,
        env=env,
        preexec_fn=_demote(user, group),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    _pid_file(name).write_text(str(child.pid))
    time.sleep(1)
    if child.poll() is not None:
        raise SystemExit(f"{name}: exited at once ({child.returncode}); see {LOG_DIR / name}.log")
    print(f"{name}: started (pid {child.pid}, log {LOG_DIR / name}.log)")


def stop(name: str) -> None:
    name = name.removesuffix(".service")
    pid = _running(name)
    if pid is None:
        _pid_file(name).unlink(missing_ok=True)
        return
    unit = UNIT_DIR / f"{name}.service"
    service = parse_unit(unit) if unit.exists() else {}
    sig = getattr(signal, (service.get("KillSignal") or ["SIGTERM"])[-1])
    timeout = float((service.get("TimeoutStopSec") or ["90"])[-1].rstrip("s"))
    os.killpg(pid, sig)  # the process group: gunicorn's and celery's children with their parent
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(name).unlink(missing_ok=True)
    print(f"{name}: stopped")


def status() -> int:
    names = sorted(p.stem for p in STATE_DIR.glob("*.pid")) if STATE_DIR.exists() else []
    for name in names:
        pid = _running(name)
        print(f"{name}: running (pid {pid})" if pid else f"{name}: stopped")
    return 0


def run(env_file: Path, user: str | None, chdir: str, argv: list[str]) -> int:
    env = {**_environment({"EnvironmentFile": [str(env_file)]}), **_home(user)}
    return subprocess.run(argv, cwd=chdir, env=env, preexec_fn=_demote(user, None), check=False).returncode  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("start").add_argument("units", nargs="+", type=Path)
    sub.add_parser("stop").add_argument("units", nargs="+")
    sub.add_parser("status")
    ex = sub.add_parser("exec")
    ex.add_argument("--env-file", type=Path, required=True)
    ex.add_argument("--user")
    ex.add_argument("--chdir", default="/")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.action == "start":
        for unit in args.units:
            start(unit)
    elif args.action == "stop":
        for unit in args.units:
            stop(unit)
    elif args.action == "status":
        return status()
    else:
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        return run(args.env_file, args.user, args.chdir, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
