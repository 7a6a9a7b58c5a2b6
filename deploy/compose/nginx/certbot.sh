#!/bin/sh
# certbot in Parley's compose stack: the first certificate through nginx's webroot, then a renewal
# attempt twice a day (certbot renews only within 30 days of expiry). nginx picks the files up itself.
set -eu
: "${PARLEY_DOMAIN:?PARLEY_DOMAIN is not set}"
if [ -z "${CERTBOT_EMAIL:-}" ]; then
  echo "CERTBOT_EMAIL is empty: no certificate requested; nginx keeps its self-signed one."
  while :; do sleep 86400; done
fi
server=""
if [ -n "${ACME_SERVER:-}" ]; then server="--server $ACME_SERVER"; fi
while :; do
  # shellcheck disable=SC2086 # $server is empty or two words
  certbot certonly --webroot -w /var/www/parley-acme -d "$PARLEY_DOMAIN" -m "$CERTBOT_EMAIL" \
    --agree-tos -n --no-eff-email --keep-until-expiring $server \
    || echo "certbot failed; is $PARLEY_DOMAIN pointing at this host with port 80 open? Retrying in 12 h."
  sleep 43200
done
