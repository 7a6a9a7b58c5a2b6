#!/usr/bin/env bash
# Parley on one server: PostgreSQL, Redis, nginx and a certificate, from a bare Debian 12 or
# Ubuntu 22.04/24.04, as root:
#
#   git clone <your Parley repository> parley && cd parley
#   sudo deploy/install.sh --domain chat.example.com --email ops@example.com
#
# then open the printed https://chat.example.com/setup/ with the printed setup token.
# Running it again upgrades in place: new code, new dependencies, migrations, restarts; the settings
# in /etc/parley/parley.env, the database and the certificate are kept. See docs/deploy-install.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh --domain NAME --email ADDRESS [options]
       install.sh --no-tls [--domain NAME] [options]

  --domain NAME          the name Parley is reached at (its DNS record must point at this server)
  --email ADDRESS        for the certificate authority's expiry notices (required with TLS)
  --no-tls               plain HTTP on port 80, for a trial on a LAN; no certificate
  --acme-server URL      another ACME directory than Let's Encrypt's (a test CA, a company CA)
  --acme-ca-bundle FILE  CA bundle that certbot trusts for --acme-server (a test CA's own root)
  --db-name NAME         PostgreSQL database (default: parley)
  --db-user NAME         PostgreSQL role (default: parley)
  --redis-db N           Redis database number (default: 0)
  --web-port PORT        local port of the web process behind nginx (default: 8000)
  --prefix DIR           where the code and its virtualenv go (default: /opt/parley)
  -h, --help             this text
EOF
}

die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf "==> [%ss] %s\n" "$SECONDS" "$*"; }

DOMAIN="" EMAIL="" TLS=1 ACME_SERVER="" ACME_CA_BUNDLE=""
DB_NAME=parley DB_USER=parley REDIS_DB=0 WEB_PORT=8000 PREFIX=/opt/parley
while [ $# -gt 0 ]; do
  case "$1" in
    --domain) DOMAIN="${2:?--domain needs a value}"; shift 2 ;;
    --email) EMAIL="${2:?--email needs a value}"; shift 2 ;;
    --no-tls) TLS=0; shift ;;
    --acme-server) ACME_SERVER="${2:?--acme-server needs a value}"; shift 2 ;;
    --acme-ca-bundle) ACME_CA_BUNDLE="${2:?--acme-ca-bundle needs a value}"; shift 2 ;;
    --db-name) DB_NAME="${2:?--db-name needs a value}"; shift 2 ;;
    --db-user) DB_USER="${2:?--db-user needs a value}"; shift 2 ;;
    --redis-db) REDIS_DB="${2:?--redis-db needs a value}"; shift 2 ;;
    --web-port) WEB_PORT="${2:?--web-port needs a value}"; shift 2 ;;
    --prefix) PREFIX="${2:?--prefix needs a value}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ETC=/etc/parley
ENV_FILE=$ETC/parley.env
VAR=/var/lib/parley
ACME_ROOT=/var/www/parley-acme
SITE=/etc/nginx/sites-available/parley
UNITS=(parley-web parley-worker parley-beat parley-connectors)

# ---------------------------------------------------------------- checks before anything changes
[ "$(id -u)" -eq 0 ] || die "run as root (sudo deploy/install.sh ...)"
if [ ! -f "$SRC/manage.py" ] || [ ! -d "$SRC/deploy/systemd" ]; then
  die "run install.sh from a Parley checkout ($SRC is not one)"
fi
[[ "$DB_NAME" =~ ^[a-z_][a-z0-9_]*$ ]] || die "--db-name: lower-case letters, digits and _ only"
[[ "$DB_USER" =~ ^[a-z_][a-z0-9_]*$ ]] || die "--db-user: lower-case letters, digits and _ only"
[[ "$REDIS_DB" =~ ^[0-9]+$ ]] || die "--redis-db: a number"
if ! [[ "$WEB_PORT" =~ ^[0-9]+$ ]] || [ "$WEB_PORT" -lt 1 ] || [ "$WEB_PORT" -gt 65535 ]; then
  die "--web-port: 1-65535"
fi
if [ "$TLS" = 1 ]; then
  [ -n "$DOMAIN" ] || die "--domain is required (or --no-tls for a LAN trial)"
  [ -n "$EMAIL" ] || die "--email is required for the certificate (or --no-tls)"
fi
if [ -n "$DOMAIN" ] && ! [[ "$DOMAIN" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
  die "--domain: '$DOMAIN' is not a host name"
fi
[ -z "$ACME_CA_BUNDLE" ] || [ -f "$ACME_CA_BUNDLE" ] || die "--acme-ca-bundle: no such file: $ACME_CA_BUNDLE"

OS_RELEASE="${PARLEY_OS_RELEASE:-/etc/os-release}"   # another file only in the installer's own tests
[ -r "$OS_RELEASE" ] || die "unsupported operating system: no $OS_RELEASE (Debian 12, Ubuntu 22.04 or 24.04 needed)"
# shellcheck disable=SC1090
OS_ID="$(. "$OS_RELEASE" && echo "${ID:-}")"
# shellcheck disable=SC1090
OS_VERSION="$(. "$OS_RELEASE" && echo "${VERSION_ID:-}")"
case "$OS_ID $OS_VERSION" in
  "debian 12"|"ubuntu 24.04") PYTHON_PKGS=(python3 python3-venv) PYTHON=/usr/bin/python3 ;;
  "ubuntu 22.04") PYTHON_PKGS=(python3.11 python3.11-venv) PYTHON=/usr/bin/python3.11 ;;
  *) die "unsupported operating system: $OS_ID $OS_VERSION (Debian 12, Ubuntu 22.04 or 24.04 needed)" ;;
esac

if [ "$TLS" = 1 ] && [ -z "$(getent ahosts "$DOMAIN" 2>/dev/null)" ]; then
  die "$DOMAIN does not resolve; create its DNS A/AAAA record pointing at this server ($(hostname -I 2>/dev/null | awk '{print $1}')) and run again, or use --no-tls"
fi

SYSTEMD=0
[ -d /run/systemd/system ] && SYSTEMD=1

# Who listens on a TCP port: the process name, or nothing.
listener() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)".*/\1/p' | head -n1
}
port_free_or() {  # port, the process names allowed to hold it (ours, on a re-run)
  local port=$1 who; shift
  command -v ss >/dev/null 2>&1 || return 0
  who="$(listener "$port")"
  [ -z "$who" ] && return 0
  local ok
  for ok in "$@"; do [ "$who" = "$ok" ] && return 0; done
  die "port $port is already taken by '$who'; stop it or choose another port (--web-port for Parley's own)"
}

check_ports() {
  port_free_or 80 nginx
  if [ "$TLS" = 1 ]; then port_free_or 443 nginx; fi
  port_free_or "$WEB_PORT" gunicorn
}
check_ports   # again after the packages when ss (iproute2) was not there yet

# ---------------------------------------------------------------- packages
say "packages (apt): PostgreSQL, Redis, nginx, certbot, Python"
export DEBIAN_FRONTEND=noninteractive
PKGS=(postgresql redis-server nginx "${PYTHON_PKGS[@]}" rsync curl iproute2 ca-certificates openssl)
[ "$TLS" = 1 ] && PKGS+=(certbot)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

check_ports

# ---------------------------------------------------------------- services Parley needs
postgres_answers() { runuser -u postgres -- psql -tAc 'SELECT 1' >/dev/null 2>&1; }
postgres_start() {
  local conf
  for conf in /etc/postgresql/*/main; do
    conf="${conf#/etc/postgresql/}"
    pg_ctlcluster --skip-systemctl-redirect "${conf%%/*}" main start || true
  done
}
redis_answers() { redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; }
redis_start() { redis-server /etc/redis/redis.conf --daemonize yes >/dev/null; }
start_service() {  # unit name, function: does it answer, function: start it without systemd
  local name=$1 answers=$2 fallback=$3
  if [ "$SYSTEMD" = 1 ]; then
    systemctl enable --now "$name" >/dev/null 2>&1 || systemctl start "$name"
  elif ! "$answers"; then
    "$fallback"
  fi
  for _ in $(seq 1 30); do "$answers" && return 0; sleep 1; done
  die "$name did not start"
}
say "PostgreSQL and Redis"
start_service postgresql postgres_answers postgres_start
start_service redis-server redis_answers redis_start

# ---------------------------------------------------------------- user, code, virtualenv
say "user 'parley', code in $PREFIX"
id parley >/dev/null 2>&1 || useradd --system --home-dir "$VAR" --shell /usr/sbin/nologin parley
install -d -m 755 -o parley -g parley "$VAR" "$VAR/staticfiles"
install -d -m 750 -o root -g parley "$ETC"
mkdir -p "$PREFIX"
if [ "$(cd "$PREFIX" && pwd -P)" != "$(cd "$SRC" && pwd -P)" ]; then
  # --delete: a module or migration removed upstream must not linger; the virtualenv stays.
  rsync -a --delete --exclude=/.git --exclude=/.venv --exclude=/var --exclude=/node_modules \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis \
    --exclude=.import_linter_cache "$SRC/" "$PREFIX/"
fi
chown -R root:root "$PREFIX"
# The distribution's Python (readable by the parley user), not whichever python3 is first on PATH.
if ! runuser -u parley -- "$PREFIX/.venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$PREFIX/.venv"
  "$PYTHON" -m venv "$PREFIX/.venv"
fi
say "Python packages (requirements/production.txt)"
install -d -m 755 /var/log/parley
"$PREFIX/.venv/bin/pip" install -q --disable-pip-version-check -r "$PREFIX/requirements/production.txt" \
  >/var/log/parley/install-pip.log 2>&1 || { tail -n 40 /var/log/parley/install-pip.log >&2; die "pip install failed (log: /var/log/parley/install-pip.log)"; }

# ---------------------------------------------------------------- settings: /etc/parley/parley.env
rand() { openssl rand -hex "$1"; }
set_env() {  # KEY VALUE: replace the line or add it; every other line (your edits) stays
  local key=$1 value=$2 tmp
  tmp="$(mktemp "$ETC/.parley.env.XXXXXX")"
  if grep -q "^$key=" "$ENV_FILE"; then
    awk -v k="$key" -v v="$value" 'BEGIN{FS=OFS="="} $1==k{print k "=" v; next} {print}' "$ENV_FILE" >"$tmp"
  else
    cat "$ENV_FILE" >"$tmp"; printf '%s=%s\n' "$key" "$value" >>"$tmp"
  fi
  chmod 600 "$tmp"; mv "$tmp" "$ENV_FILE"
}
get_env() { sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1; }

if [ -f "$ENV_FILE" ]; then
  say "keeping $ENV_FILE (its secrets and your edits); updating what the options say"
else
  say "writing $ENV_FILE with new secrets"
  umask 077
  cat >"$ENV_FILE" <<EOF
# Parley settings, written by deploy/install.sh. Every setting: deploy/parley.env.example.
# install.sh keeps this file on a re-run: it changes only the lines its options decide.
SECRET_KEY=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
# Fernet keys for secrets at rest (first encrypts). Back this file up: without the key the stored
# platform credentials and API keys cannot be read (deploy backup: docs/deploy-upgrades.md).
PARLEY_ENCRYPTION_KEYS=$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '\n')
DATABASE_URL=postgres://$DB_USER:$(rand 24)@127.0.0.1:5432/$DB_NAME
DEBUG=false
AI_PROVIDER=builtin
LOG_LEVEL=INFO
EOF
  umask 022
fi
chmod 600 "$ENV_FILE"; chown root:root "$ENV_FILE"

HOST="${DOMAIN:-$(hostname -I 2>/dev/null | awk '{print $1}')}"
HOST="${HOST:-127.0.0.1}"
SCHEME=https; [ "$TLS" = 1 ] || SCHEME=http
DB_PASSWORD="$(get_env DATABASE_URL | sed -n 's#^postgres://[^:]*:\([^@]*\)@.*#\1#p')"
[ -n "$DB_PASSWORD" ] || { DB_PASSWORD="$(rand 24)"; }
set_env DATABASE_URL "postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:5432/$DB_NAME"
set_env REDIS_URL "redis://127.0.0.1:6379/$REDIS_DB"
set_env ALLOWED_HOSTS "$HOST,127.0.0.1,localhost"
set_env PUBLIC_BASE_URL "$SCHEME://$HOST"
set_env CSRF_TRUSTED_ORIGINS "$SCHEME://$HOST"
if [ "$TLS" = 1 ]; then
  set_env SECURE_COOKIES true; set_env SECURE_SSL_REDIRECT true
  [ -n "$(get_env SECURE_HSTS_SECONDS)" ] || set_env SECURE_HSTS_SECONDS 3600
else
  set_env SECURE_COOKIES false; set_env SECURE_SSL_REDIRECT false; set_env SECURE_HSTS_SECONDS 0
fi
set_env GUNICORN_BIND "127.0.0.1:$WEB_PORT"
[ -n "$(get_env WEB_CONCURRENCY)" ] || set_env WEB_CONCURRENCY "$(( $(nproc) * 2 > 8 ? 8 : $(nproc) * 2 ))"
set_env PARLEY_VAR_DIR "$VAR"
set_env STATIC_ROOT "$VAR/staticfiles"
set_env PROMETHEUS_MULTIPROC_DIR /run/parley/metrics

# ---------------------------------------------------------------- database
say "database $DB_NAME (role $DB_USER)"
psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" = 1 ]; then
  psql_admin -c "ALTER ROLE \"$DB_USER\" LOGIN PASSWORD '$DB_PASSWORD'"
else
  psql_admin -c "CREATE ROLE \"$DB_USER\" LOGIN PASSWORD '$DB_PASSWORD'"
fi
[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" = 1 ] \
  || psql_admin -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\""

# ---------------------------------------------------------------- stop, migrate, start
as_parley() { "$PYTHON" "$PREFIX/deploy/run_unit.py" exec --env-file "$ENV_FILE" --user parley --chdir "$PREFIX" -- "$@"; }
installed_units=()
for u in "${UNITS[@]}"; do [ -f "/etc/systemd/system/$u.service" ] && installed_units+=("$u"); done
if [ "${#installed_units[@]}" -gt 0 ]; then
  # Drain: web stops taking requests, the worker finishes what it holds (late acks hand anything
  # unfinished to the next start), then the schema changes with nothing running on it.
  say "stopping the running Parley processes (upgrade)"
  if [ "$SYSTEMD" = 1 ]; then
    systemctl stop "${installed_units[@]}" || true
  else
    "$PYTHON" "$PREFIX/deploy/run_unit.py" stop "${installed_units[@]}"
  fi
fi

say "migrations and static files"
# What the units' RuntimeDirectory= makes, for the commands run here before them.
install -d -m 755 -o parley -g parley /run/parley /run/parley/metrics
as_parley "$PREFIX/.venv/bin/python" manage.py migrate --noinput
as_parley "$PREFIX/.venv/bin/python" manage.py collectstatic --noinput -v0
as_parley "$PREFIX/.venv/bin/python" manage.py check --deploy --fail-level ERROR >/var/log/parley/install-check.log 2>&1 \
  || { cat /var/log/parley/install-check.log >&2; die "manage.py check --deploy found errors"; }

say "systemd units"
for u in "${UNITS[@]}"; do
  sed "s#/opt/parley#$PREFIX#g" "$PREFIX/deploy/systemd/$u.service" >"/etc/systemd/system/$u.service"
done
# Connectors only matter with long-connection channels, but cost nothing idle: start them too.
if [ "$SYSTEMD" = 1 ]; then
  systemctl daemon-reload
  systemctl enable "${UNITS[@]}" >/dev/null 2>&1
  systemctl restart "${UNITS[@]}"
else
  if command -v systemd-analyze >/dev/null 2>&1; then
    units=(); for u in "${UNITS[@]}"; do units+=("/etc/systemd/system/$u.service"); done
    SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "${units[@]}" \
      || die "systemd-analyze verify found errors in the units"
  fi
  say "no running systemd here: starting each unit's own commands (deploy/run_unit.py)"
  units=(); for u in "${UNITS[@]}"; do units+=("/etc/systemd/system/$u.service"); done
  "$PYTHON" "$PREFIX/deploy/run_unit.py" start "${units[@]}"
fi
for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$WEB_PORT/readyz" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$WEB_PORT/readyz" >/dev/null || die "Parley web did not become ready on 127.0.0.1:$WEB_PORT (journalctl -u parley-web, or /var/log/parley/parley-web.log)"

# ---------------------------------------------------------------- nginx and the certificate
render_site() {  # template → the site, with this install's name and port; no IPv6 listen without IPv6
  local name="${DOMAIN:-_}"
  sed -e "s/parley\.example\.com/$name/g" -e "s/127\.0\.0\.1:8000/127.0.0.1:$WEB_PORT/" "$1" \
    | if [ -s /proc/net/if_inet6 ]; then cat; else grep -v 'listen \[::\]'; fi >"$SITE"
}
nginx_reload() {
  nginx -t -q || die "nginx -t rejected the configuration"
  if [ "$SYSTEMD" = 1 ]; then
    systemctl enable nginx >/dev/null 2>&1 || true
    systemctl reload-or-restart nginx
  elif [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    nginx -s reload
  else
    nginx
  fi
  sleep 1
}
say "nginx"
install -d -m 755 "$ACME_ROOT/.well-known/acme-challenge"
# The distribution's welcome site would answer for every name on port 80.
[ -L /etc/nginx/sites-enabled/default ] && rm -f /etc/nginx/sites-enabled/default
CERT=/etc/letsencrypt/live/$DOMAIN/fullchain.pem
if [ "$TLS" = 1 ] && [ -f "$CERT" ]; then
  render_site "$PREFIX/deploy/nginx/parley.conf"
else
  render_site "$PREFIX/deploy/nginx/parley-http.conf"
fi
ln -sf "$SITE" /etc/nginx/sites-enabled/parley
nginx_reload

if [ "$TLS" = 1 ]; then
  # The domain must reach this server's port 80: try it as the certificate authority will.
  probe="parley-probe-$(rand 8)"
  echo "$probe" >"$ACME_ROOT/.well-known/acme-challenge/$probe"
  got="$(curl -s --max-time 10 "http://$DOMAIN/.well-known/acme-challenge/$probe" || true)"
  rm -f "$ACME_ROOT/.well-known/acme-challenge/$probe"
  if [ "$got" != "$probe" ]; then
    addrs="$(getent ahosts "$DOMAIN" | awk '{print $1}' | sort -u | tr '\n' ' ')"
    here="$(hostname -I 2>/dev/null || true)"
    if [ -z "$addrs" ]; then
      die "$DOMAIN does not resolve; create its DNS A/AAAA record pointing at this server ($here) and run again"
    fi
    die "$DOMAIN resolves to ${addrs% }, which does not answer for this server on port 80 (this server: ${here% }); point the DNS record here and open port 80, or use --no-tls"
  fi
  say "certificate for $DOMAIN (certbot, webroot)"
  certbot_args=(certonly --webroot -w "$ACME_ROOT" -d "$DOMAIN" -m "$EMAIL" --agree-tos -n --no-eff-email --keep-until-expiring)
  [ -n "$ACME_SERVER" ] && certbot_args+=(--server "$ACME_SERVER")
  if [ -n "$ACME_CA_BUNDLE" ]; then
    REQUESTS_CA_BUNDLE="$ACME_CA_BUNDLE" certbot "${certbot_args[@]}"
  else
    certbot "${certbot_args[@]}"
  fi
  [ -f "$CERT" ] || die "certbot did not leave a certificate at $CERT"
  # Renewal (certbot.timer, or its cron entry without systemd) reloads nginx to serve the new one.
  install -d /etc/letsencrypt/renewal-hooks/deploy
  cat >/etc/letsencrypt/renewal-hooks/deploy/parley-nginx-reload <<'EOF'
#!/bin/sh
# Written by Parley's deploy/install.sh: serve a renewed certificate at once.
nginx -t -q || exit 1
if [ -d /run/systemd/system ]; then systemctl reload nginx; else nginx -s reload; fi
EOF
  chmod 755 /etc/letsencrypt/renewal-hooks/deploy/parley-nginx-reload
  render_site "$PREFIX/deploy/nginx/parley.conf"
  nginx_reload
  curl -sf --max-time 10 -o /dev/null --resolve "$DOMAIN:443:127.0.0.1" ${ACME_CA_BUNDLE:+--insecure} \
    "https://$DOMAIN/healthz" || die "nginx does not serve https://$DOMAIN/healthz"
fi

# ---------------------------------------------------------------- done
TOKEN="$(as_parley "$PREFIX/.venv/bin/python" manage.py setup_token)"
if [[ "$TOKEN" =~ ^[A-Za-z0-9_-]+$ ]]; then
  NEXT="Finish the set-up at:  $SCHEME://$HOST/setup/
  Setup token:           $TOKEN"
else
  NEXT="$TOKEN  $SCHEME://$HOST/admin/"   # already set up: the command says so
fi
cat <<EOF

Parley is running.
  $NEXT
  Settings:              $ENV_FILE (mode 600; back it up with the database)
  Upgrade:               pull the new code and run install.sh again with the same options.
EOF
