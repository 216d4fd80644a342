#!/bin/bash
# A development CA and bundle-signing key for RAUC, made once in DIR (default
# /var/cache/upazila-image/dev-signing): for tests and for trying updates on a bench.
# Hubs in the field trust national's CA instead (UPDATE_KEYRING for build.sh, and
# UPDATE_SIGNING_CERT/UPDATE_SIGNING_KEY for bundle.sh); never ship this one.
#   image/sign-dev.sh [DIR]    prints DIR
set -euo pipefail
dir=${1:-${IMAGE_CACHE:-/var/cache/upazila-image}/dev-signing}
mkdir -p "$dir"
chmod 0700 "$dir"
cd "$dir"
if [[ ! -s ca.cert.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/O=Upazila hub development/CN=Update CA (development only)" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca.key.pem -out ca.cert.pem 2>/dev/null
  chmod 0600 ca.key.pem
fi
if [[ ! -s signing.cert.pem ]]; then
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/O=Upazila hub development/CN=Update signing (development only)" \
    -keyout signing.key.pem -out signing.csr.pem 2>/dev/null
  chmod 0600 signing.key.pem
  # no extendedKeyUsage: RAUC's default check (S/MIME signing purpose) refuses codeSigning
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' >ext.cnf
  openssl x509 -req -in signing.csr.pem -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
    -days 3650 -extfile ext.cnf -out signing.cert.pem 2>/dev/null
  rm -f signing.csr.pem ext.cnf
fi
echo "$dir"
