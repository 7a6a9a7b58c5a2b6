#!/usr/bin/env bash
# CI: deploy/install.sh for real on this machine, against a local ACME server (Debian's pebble)
# instead of Let's Encrypt. Proves: the certificate is issued; nginx serves Parley over HTTPS on the
# domain; /healthz and a web-chat WebSocket work through nginx; `certbot renew --dry-run` passes; a
# second installer run upgrades in place and the conversation is still there.
#
# Its own database (parley_installer_ci), Redis database 13 and web port 18431: the test suite's
# database and Redis database 0 are never touched. It wipes and re-creates what the installer made
# (/opt/parley, /etc/parley, the CI domain's certificate), so it runs only with CI=true or
# PARLEY_INSTALLER_CI=1, and it stops every process it started when it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$(pwd)"

[ "${CI:-}" = true ] || [ "${PARLEY_INSTALLER_CI:-}" = 1 ] \
  || { echo "installer-ci.sh changes this machine (/opt/parley, /etc/parley, nginx): set PARLEY_INSTALLER_CI=1 to run it" >&2; exit 2; }

DOMAIN=parley-ci.test
EMAIL=ops@parley-ci.test
DB=parley_installer_ci
REDIS_DB=13
WEB_PORT=18431
ACME=https://127.0.0.1:14000/dir
PY="${PYTHON:-$REPO/.venv/bin/python}"
WORK="$(mktemp -d /tmp/parley-installer-ci.XXXXXX)"
PEBBLE_PID=""
NGINX_WAS_RUNNING=0
[ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null && NGINX_WAS_RUNNING=1
T0=$(date +%s)
step() { printf '== installer-ci [%3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

cleanup() {
  set +e
  if [ -f /opt/parley/deploy/run_unit.py ]; then
    python3 /opt/parley/deploy/run_unit.py stop parley-web parley-worker parley-beat parley-connectors >/dev/null
  fi
  # By its pid, not "nginx -s quit": that reads the configuration first and gives up if it is broken.
  if [ "$NGINX_WAS_RUNNING" = 0 ] && [ -s /run/nginx.pid ]; then kill -QUIT "$(cat /run/nginx.pid)"; fi
  [ -n "$PEBBLE_PID" ] && kill "$PEBBLE_PID" 2>/dev/null && wait "$PEBBLE_PID" 2>/dev/null
  sed -i "/ $DOMAIN\$/d" /etc/hosts 2>/dev/null || { grep -v " $DOMAIN\$" /etc/hosts >"$WORK/hosts"; cat "$WORK/hosts" >/etc/hosts; }
  rm -rf "$WORK"
}
trap cleanup EXIT

step "tools: pebble (ACME test server), nginx, certbot"
need=()
for p in pebble nginx certbot postgresql redis-server rsync; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

step "a fresh machine: remove what an earlier run installed"
if [ -f /opt/parley/deploy/run_unit.py ]; then
  python3 /opt/parley/deploy/run_unit.py stop parley-web parley-worker parley-beat parley-connectors >/dev/null || true
fi
rm -rf /opt/parley /etc/parley /etc/systemd/system/parley-*.service /etc/nginx/sites-enabled/parley /etc/nginx/sites-available/parley
rm -rf "/etc/letsencrypt/live/$DOMAIN" "/etc/letsencrypt/archive/$DOMAIN" "/etc/letsencrypt/renewal/$DOMAIN.conf" \
  /etc/letsencrypt/accounts/127.0.0.1:14000 /var/log/parley   # pebble forgets its accounts when it stops
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB" >/dev/null
psql -h 127.0.0.1 -U postgres -qc "DROP ROLE IF EXISTS $DB" >/dev/null
redis-cli -h 127.0.0.1 -n "$REDIS_DB" flushdb >/dev/null

step "pebble on 127.0.0.1:14000, $DOMAIN → 127.0.0.1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Parley CI ACME root" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$WORK/pebble.key" -out "$WORK/pebble.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$WORK/san.ext"
openssl x509 -req -in "$WORK/pebble.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
  -extfile "$WORK/san.ext" -out "$WORK/pebble.pem" 2>/dev/null
cat >"$WORK/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
            "certificate": "$WORK/pebble.pem", "privateKey": "$WORK/pebble.key",
            "httpPort": 80, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
grep -q " $DOMAIN\$" /etc/hosts || echo "127.0.0.1 $DOMAIN" >>/etc/hosts
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$WORK/pebble.json" >"$WORK/pebble.log" 2>&1 &
PEBBLE_PID=$!
for _ in $(seq 1 30); do curl -sf --cacert "$WORK/ca.pem" "$ACME" >/dev/null && break; sleep 0.5; done
curl -sf --cacert "$WORK/ca.pem" "$ACME" >/dev/null || { cat "$WORK/pebble.log"; echo "pebble did not start" >&2; exit 1; }

install_parley() {
  bash deploy/install.sh --domain "$DOMAIN" --email "$EMAIL" --acme-server "$ACME" --acme-ca-bundle "$WORK/ca.pem" \
    --db-name "$DB" --db-user "$DB" --redis-db "$REDIS_DB" --web-port "$WEB_PORT" | tee "$WORK/install-$1.log"
}
ok() { echo "   ok: $*" | tee -a "$WORK/client.log"; }
fail() { echo "installer-ci: FAILED: $*" >&2; for f in /var/log/parley/*.log; do echo "--- $f"; tail -n 30 "$f"; done >&2; exit 1; }

step "install.sh, first run (a bare machine)"
install_parley 1 || fail "first install"
grep -q "https://$DOMAIN/setup/" "$WORK/install-1.log" || fail "no setup URL printed"
grep -Eq "Setup token: +[A-Za-z0-9_-]{16,}" "$WORK/install-1.log" || fail "no setup token printed"
ok "the installer printed https://$DOMAIN/setup/ and the setup token"
[ "$(stat -c %a /etc/parley/parley.env)" = 600 ] || fail "parley.env is not mode 600"
ok "/etc/parley/parley.env is mode 600"
# The certificate pebble issued chains to pebble's root of this run: fetch it to check TLS for real.
curl -sf --cacert "$WORK/ca.pem" https://127.0.0.1:15000/roots/0 >"$WORK/issuer-root.pem"
openssl verify -CAfile "$WORK/issuer-root.pem" -untrusted "/etc/letsencrypt/live/$DOMAIN/chain.pem" \
  "/etc/letsencrypt/live/$DOMAIN/cert.pem" >/dev/null || fail "the certificate does not chain to pebble's root"
openssl x509 -in "/etc/letsencrypt/live/$DOMAIN/cert.pem" -noout -checkhost "$DOMAIN" | grep -q "does match" \
  || fail "the certificate is not for $DOMAIN"
ok "certificate for $DOMAIN issued by the ACME server ($(openssl x509 -in "/etc/letsencrypt/live/$DOMAIN/cert.pem" -noout -issuer))"

step "through nginx: HTTPS /healthz, redirects, the ACME path, a web-chat WebSocket"
cat >"$WORK/make_channel.py" <<'PY'
from apps.bots.models import Bot
from apps.channels.models import Channel
from apps.tenants.models import Tenant

tenant, _ = Tenant.objects.get_or_create(slug="ci", defaults={"name": "Installer CI"})
bot, _ = Bot.objects.get_or_create(tenant=tenant, slug="helpdesk", defaults={"name": "Helpdesk", "merge_window_ms": 0})
Channel.objects.get_or_create(key="ci-web", defaults={"bot": bot, "platform": "web", "credentials": {}})
PY
python3 /opt/parley/deploy/run_unit.py exec --env-file /etc/parley/parley.env --user parley --chdir /opt/parley -- \
  /opt/parley/.venv/bin/python manage.py shell -c "$(cat "$WORK/make_channel.py")" || fail "creating the web channel"
"$PY" deploy/test/installer_client.py first --domain "$DOMAIN" --cafile "$WORK/issuer-root.pem" --key ci-web \
  --state "$WORK/client.json" | tee "$WORK/client.log" || fail "the web-chat check through nginx"

step "certbot renew --dry-run"
REQUESTS_CA_BUNDLE="$WORK/ca.pem" certbot renew --dry-run --cert-name "$DOMAIN" --server "$ACME" --no-random-sleep-on-renew -q || fail "renewal dry run"
ok "certbot renew --dry-run"
[ -x /etc/letsencrypt/renewal-hooks/deploy/parley-nginx-reload ] || fail "no renewal hook reloading nginx"
ok "a renewal hook reloads nginx"

step "install.sh, second run (upgrade in place)"
secret_before="$(sha256sum /etc/parley/parley.env | cut -c1-16)"
grep '^SECRET_KEY=\|^PARLEY_ENCRYPTION_KEYS=' /etc/parley/parley.env | sha256sum >"$WORK/secrets-1"
install_parley 2 || fail "second install"
grep '^SECRET_KEY=\|^PARLEY_ENCRYPTION_KEYS=' /etc/parley/parley.env | sha256sum >"$WORK/secrets-2"
cmp -s "$WORK/secrets-1" "$WORK/secrets-2" || fail "the upgrade replaced SECRET_KEY or PARLEY_ENCRYPTION_KEYS"
ok "the upgrade kept SECRET_KEY and PARLEY_ENCRYPTION_KEYS (env file was $secret_before…)"
"$PY" deploy/test/installer_client.py second --domain "$DOMAIN" --cafile "$WORK/issuer-root.pem" --key ci-web \
  --state "$WORK/client.json" | tee -a "$WORK/client.log" || fail "the conversation after the upgrade"

step "done"
# The checks above, counted (every one that failed stopped the script).
echo "installer-ci: $(grep -c '^   ok: ' "$WORK/client.log") passed, 0 failed"
