"""The one-node install files: deploy/install.sh refuses clearly before it changes anything, every
shipped nginx site passes ``nginx -t``, the scripts pass shellcheck, and the runner that stands in for
systemd reads the units as systemd does. (The whole install runs for real in CI:
deploy/test/installer-ci.sh, see docs/deploy-install.md.)"""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCRIPTS = [
    DEPLOY / "install.sh",
    DEPLOY / "test/installer-ci.sh",
    ROOT / ".ci/run",
    DEPLOY / "compose/nginx/entrypoint.sh",
    DEPLOY / "compose/nginx/certbot.sh",
]
NGINX_SITES = [*sorted((DEPLOY / "nginx").glob("*.conf")), DEPLOY / "compose/nginx/parley.conf.template"]


def install(*args: str, os_release: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if os_release is not None:
        env["PARLEY_OS_RELEASE"] = os_release
    return subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_install_sh_explains_its_options():
    done = install("--help")
    assert done.returncode == 0
    for option in ("--domain", "--email", "--no-tls", "--acme-server", "--web-port", "--redis-db"):
        assert option in done.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--colour", "blue"], "unknown option: --colour"),
        (["--email", "ops@example.com"], "--domain is required"),
        (["--domain", "chat.example.com"], "--email is required"),
        (["--no-tls", "--web-port", "99999"], "--web-port: 1-65535"),
        (["--no-tls", "--db-name", "parley; DROP"], "--db-name"),
        (["--domain", "not a name", "--email", "a@b.c"], "is not a host name"),
    ],
)
def test_install_sh_refuses_bad_options_with_a_clear_message(args, message):
    done = install(*args)
    assert done.returncode != 0
    assert message in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh checks for root first")
def test_install_sh_names_an_unsupported_operating_system(tmp_path):
    release = tmp_path / "os-release"
    release.write_text('ID=centos\nVERSION_ID="7"\n')
    done = install("--no-tls", os_release=str(release))
    assert done.returncode != 0
    assert "unsupported operating system: centos 7 (Debian 12, Ubuntu 22.04 or 24.04 needed)" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh checks for root first")
def test_install_sh_stops_when_the_domain_does_not_resolve(tmp_path):
    release = tmp_path / "os-release"
    release.write_text('ID=ubuntu\nVERSION_ID="24.04"\n')
    done = install("--domain", "parley.invalid", "--email", "ops@example.com", os_release=str(release))
    assert done.returncode != 0
    assert "parley.invalid does not resolve; create its DNS A/AAAA record" in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh checks for root first")
@pytest.mark.skipif(shutil.which("ss") is None, reason="no ss (iproute2)")
def test_install_sh_refuses_a_port_another_program_holds(tmp_path):
    release = tmp_path / "os-release"
    release.write_text('ID=debian\nVERSION_ID="12"\n')
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = install("--no-tls", "--web-port", str(port), os_release=str(release))
    assert done.returncode != 0
    # The holder is named: this test process ("python" or "pytest", as it was started).
    assert re.search(rf"port {port} is already taken by '(python|pytest)", done.stderr)
    assert "--web-port" in done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="no shellcheck (apt install shellcheck; .ci/run does)")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_pass_shellcheck(script):
    done = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


@pytest.mark.skipif(shutil.which("nginx") is None, reason="no nginx (apt install nginx; .ci/run does)")
@pytest.mark.parametrize("site", NGINX_SITES, ids=lambda p: p.name)
def test_every_shipped_nginx_site_passes_nginx_t(site, tmp_path):
    """The site inside a minimal nginx.conf (as Debian's includes sites-enabled/ in ``http``), its
    certificate paths pointed at a throw-away certificate."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=parley.example.com",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=True,
    )
    text = site.read_text()
    text = text.replace("/etc/letsencrypt/live/parley.example.com/fullchain.pem", str(cert))
    text = text.replace("/etc/letsencrypt/live/parley.example.com/privkey.pem", str(key))
    # The compose template: what its entrypoint fills in; "web" resolves only on the compose network.
    text = text.replace("/etc/nginx/parley-tls/fullchain.pem", str(cert))
    text = text.replace("/etc/nginx/parley-tls/privkey.pem", str(key))
    text = text.replace("${PARLEY_DOMAIN}", "parley.example.com").replace("server web:8000", "server 127.0.0.1:8000")
    if "http2 on;" in text and _nginx_version() < (1, 25, 1):  # the compose image runs nginx 1.27
        text = text.replace("listen 443 ssl;\n    http2 on;", "listen 443 ssl http2;")
    (tmp_path / "site.conf").write_text(text)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n  proxy_temp_path {tmp_path}/proxy;\n"
        f"  include {tmp_path}/site.conf;\n}}\n"
    )
    done = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def _nginx_version() -> tuple[int, ...]:
    banner = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr
    return tuple(int(n) for n in banner.split("/")[1].split()[0].split("."))


def test_the_tls_site_keeps_the_acme_path_on_plain_http():
    """Webroot renewal fetches http://<domain>/.well-known/acme-challenge/…: it must not be redirected."""
    for site in (DEPLOY / "nginx/parley.conf", DEPLOY / "compose/nginx/parley.conf.template"):
        text = site.read_text()
        plain = text[text.index("listen 80") :]
        assert plain.index("/.well-known/acme-challenge/") < plain.index("return 301 https://"), site
        assert "root /var/www/parley-acme;" in plain, site


def test_run_unit_reads_units_and_env_files_as_systemd_does(tmp_path):
    sys.path.insert(0, str(DEPLOY))
    try:
        import run_unit
    finally:
        sys.path.remove(str(DEPLOY))
    web = run_unit.parse_unit(DEPLOY / "systemd/parley-web.service")
    assert web["ExecStartPre"] == ["/opt/parley/.venv/bin/python manage.py migrate --noinput"]
    assert web["ExecStart"][0].startswith("/opt/parley/.venv/bin/gunicorn -c deploy/prometheus/gunicorn.conf.py")
    assert web["RuntimeDirectory"] == ["parley parley/metrics"]
    assert run_unit.parse_unit(DEPLOY / "systemd/parley-worker.service")["Environment"] == ["DB_POOL_MAX_SIZE=34"]
    env = tmp_path / "parley.env"
    env.write_text("# comment\nA=1\nB='two words'\n\nC=\"x=y\"\n; other comment\n")
    assert run_unit.read_env_file(env) == {"A": "1", "B": "two words", "C": "x=y"}
