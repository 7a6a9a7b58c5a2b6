"""The deploy files start what exists: the ASGI app, the Celery app, the health endpoints."""

import configparser
import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from django.urls import resolve

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _commands():
    compose = yaml.safe_load((DEPLOY / "compose/docker-compose.yml").read_text())
    for name, svc in compose["services"].items():
        if "command" in svc and svc.get("image", "").startswith("parley"):
            yield f"compose:{name}", list(svc["command"])
    for doc in yaml.safe_load_all((DEPLOY / "k8s/parley.yaml").read_text()):
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            yield f"k8s:{doc['metadata']['name']}", container["command"]
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(unit)
        argv = shlex.split(parser["Service"]["ExecStart"])
        argv[0] = Path(argv[0]).name
        yield f"systemd:{unit.name}", argv


@pytest.mark.parametrize("where,argv", list(_commands()), ids=lambda v: v if isinstance(v, str) else None)
def test_process_commands_point_at_real_entry_points(where, argv):
    program = Path(argv[0]).name
    if program == "gunicorn":
        module, _, attr = argv[-1].partition(":")
        assert hasattr(importlib.import_module(module), attr), where
        conf = argv[argv.index("-c") + 1]
        assert (DEPLOY.parent / conf).is_file(), where
    elif program == "celery":
        assert argv[1:3] == ["-A", "config"], where
        assert importlib.import_module("config").celery_app.main == "parley"
        if "worker" in argv:
            assert argv[argv.index("-P") + 1] in ("threads", "gevent"), f"{where}: workers need an I/O pool"
            queues = set(argv[argv.index("-Q") + 1].split(","))
            assert {"default", "llm", "webhooks"} <= queues, where
    elif program == "python":
        assert argv[1] == "manage.py", where
        assert argv[2] in ("migrate", "run_connectors"), where
        assert argv[2] in get_commands(), f"{where}: no such management command"
    else:
        pytest.fail(f"{where}: unexpected program {program}")


def test_every_way_to_deploy_runs_the_connectors():
    """Long-connection channels answer only where ``run_connectors`` runs: each deploy file starts it."""
    places = {where.split(":")[0] for where, argv in _commands() if argv[1:3] == ["manage.py", "run_connectors"]}
    assert places == {"compose", "k8s", "systemd"}


def test_gunicorn_config_uses_a_real_uvicorn_worker_class():
    namespace: dict = {}
    exec((DEPLOY / "prometheus/gunicorn.conf.py").read_text(), namespace)
    module, _, cls = namespace["worker_class"].rpartition(".")
    assert hasattr(importlib.import_module(module), cls)


def test_probes_hit_health_endpoints():
    for doc in yaml.safe_load_all((DEPLOY / "k8s/parley.yaml").read_text()):
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if "httpGet" in container.get(probe, {}):  # workers' probes are on their metrics socket
                    path = container[probe]["httpGet"]["path"]
                    assert resolve(path).url_name in ("readyz", "healthz")


def test_the_example_production_environment_passes_djangos_deploy_checks(tmp_path):
    """``manage.py check --deploy`` with deploy/parley.env.example (its placeholders filled in) finds
    nothing: HTTPS redirect, HSTS, secure cookies, a real secret key, DEBUG off."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "SECURE_", "PARLEY_"))}
    for line in (DEPLOY / "parley.env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            env[name.strip()] = value.strip()
    env.update(
        SECRET_KEY="x7Qe9Lr2_Vb4Nw8Zt1Ka6Ys3Uo5Pm0Hd-Jf7Gc2Bx9Ri4El8Tn1Wq6Sv3Cz5Ay0Mk",
        PARLEY_ENCRYPTION_KEYS="oV3y6Zb0m2Vq3m9cB8tK1nJ5xH4wR7eD2sA6fG9hL0E=",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        PARLEY_VAR_DIR=str(tmp_path),
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=DEPLOY.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    issues = set(re.findall(r"\((\w+\.[A-Z]\d+)\)", done.stdout + done.stderr))
    # HSTS for every subdomain, and the browsers' preload list, commit the company's whole domain:
    # left to the operator (SECURE_HSTS_INCLUDE_SUBDOMAINS), never switched on by an example file.
    assert issues <= {"security.W005", "security.W021"}, done.stdout + done.stderr
