#!/bin/sh
# nginx in Parley's compose stack: the site from parley.conf.template for $PARLEY_DOMAIN, served with
# the certbot certificate once there is one and a self-signed stand-in until then; every 5 minutes
# it looks whether certbot has obtained or renewed the certificate and reloads nginx if so.
set -eu
: "${PARLEY_DOMAIN:?PARLEY_DOMAIN is not set}"
live="/etc/letsencrypt/live/$PARLEY_DOMAIN"
tls=/etc/nginx/parley-tls
mkdir -p "$tls"

use_certificate() {
  if [ -f "$live/fullchain.pem" ]; then
    ln -sf "$live/fullchain.pem" "$tls/fullchain.pem"
    ln -sf "$live/privkey.pem" "$tls/privkey.pem"
  elif [ ! -e "$tls/fullchain.pem" ]; then
    openssl req -x509 -nodes -newkey rsa:2048 -days 30 -subj "/CN=$PARLEY_DOMAIN" \
      -keyout "$tls/selfsigned.key" -out "$tls/selfsigned.pem" 2>/dev/null
    ln -sf "$tls/selfsigned.pem" "$tls/fullchain.pem"
    ln -sf "$tls/selfsigned.key" "$tls/privkey.pem"
  fi
}

sed "s/\${PARLEY_DOMAIN}/$PARLEY_DOMAIN/g" /parley/parley.conf.template >/etc/nginx/conf.d/default.conf
use_certificate
stamp() { ls -lL "$tls/fullchain.pem" 2>/dev/null || true; }
(
  last="$(stamp)"
  while sleep 300; do
    use_certificate
    now="$(stamp)"
    if [ "$now" != "$last" ]; then nginx -s reload; last="$now"; fi
  done
) &
exec nginx -g 'daemon off;'
