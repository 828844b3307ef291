#!/bin/sh
# Writes deploy/compose.yaml's secrets (random) unless they exist. The Laravel token must be the
# one your Laravel app expects: replace secrets/laravel_token with it. Docker Compose mounts
# file secrets with the host file's mode and the gateway runs as uid 65532, so the files are
# world-readable and the directory is closed to everyone but its owner instead.
set -eu
cd "$(dirname "$0")"
chmod 700 .
umask 022
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -f api_token ] || rand > api_token
[ -f laravel_token ] || rand > laravel_token
[ -f postgres_password ] || rand > postgres_password
[ -f store_dsn ] || printf 'postgres://wagate:%s@postgres:5432/wagate?sslmode=disable' "$(cat postgres_password)" > store_dsn
echo "secrets in $(pwd): api_token (give it to Laravel), laravel_token (replace with Laravel's), postgres_password, store_dsn"
