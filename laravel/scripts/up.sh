#!/usr/bin/env bash
# Starts the reference Laravel app (laravel/) on loopback with a private PHP-FPM master and a
# private nginx master, never the system services. Everything it writes lives under
# $WAGATE_LARAVEL_DIR (default /tmp/wagate-laravel): a copy of the app, the SQLite database, the
# rendered configs, pid files, sockets and logs. Installs Debian's packages when missing.
#
# Settings (environment):
#   WAGATE_LARAVEL_DIR            runtime directory                      (/tmp/wagate-laravel)
#   WAGATE_LARAVEL_PORT           loopback port of nginx                 (8089)
#   WAGATE_LARAVEL_WORKERS        PHP-FPM pm.max_children                (8)
#   WAGATE_LARAVEL_BACKLOG        PHP-FPM listen.backlog                 (511)
#   WAGATE_LARAVEL_PROXY_TIMEOUT  nginx fastcgi_read_timeout, seconds    (60)
#   WAGATE_LARAVEL_TOKEN          bearer token the app accepts           (wagate-dev-token)
#   WAGATE_LARAVEL_SECRET         HMAC secret; empty turns signatures off ()
#   WAGATE_LARAVEL_TOKEN_PREVIOUS, WAGATE_LARAVEL_SECRET_PREVIOUS
#                                 the old token and secret during a rotation, accepted too ()
#   WAGATE_LARAVEL_REQUIRE_SIGNATURE_V2  true refuses v1-only signatures (end of the migration) (false)
#   WAGATE_LARAVEL_CREATE_UNKNOWN_SESSIONS  false makes writes for sessions the app does not know
#                                 fail (404, item error "unknown session") (true)
#
# On success it prints the URL and writes $WAGATE_LARAVEL_DIR/env (mode 0600) with
# WAGATE_LARAVEL_URL, _TOKEN, _SECRET, _WORKERS, _BACKLOG, _PROXY_TIMEOUT_MS, _DIR, _DB (the SQLite
# file) and _VERSION for other tools
# (`set -a; . /tmp/wagate-laravel/env; set +a`).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
dir=${WAGATE_LARAVEL_DIR:-/tmp/wagate-laravel}
port=${WAGATE_LARAVEL_PORT:-8089}
workers=${WAGATE_LARAVEL_WORKERS:-8}
backlog=${WAGATE_LARAVEL_BACKLOG:-511}
proxy_timeout=${WAGATE_LARAVEL_PROXY_TIMEOUT:-60}
default_token=wagate-dev-token
token=${WAGATE_LARAVEL_TOKEN:-$default_token}
secret=${WAGATE_LARAVEL_SECRET:-}
previous_token=${WAGATE_LARAVEL_TOKEN_PREVIOUS:-}
previous_secret=${WAGATE_LARAVEL_SECRET_PREVIOUS:-}
require_v2=${WAGATE_LARAVEL_REQUIRE_SIGNATURE_V2:-false}
create_unknown=${WAGATE_LARAVEL_CREATE_UNKNOWN_SESSIONS:-true}

die() { echo "laravel-up: $*" >&2; exit 1; }

for n in "$port" "$workers" "$backlog" "$proxy_timeout"; do
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || die "port, workers, backlog and proxy timeout must be positive integers (got '$n')"
done
for s in "$token" "$secret" "$previous_token" "$previous_secret"; do
	[[ $s =~ ^[A-Za-z0-9._~+/=:-]*$ ]] || die "token and secret may only use [A-Za-z0-9._~+/=:-]"
done
case $require_v2 in true|false) ;; *) die "WAGATE_LARAVEL_REQUIRE_SIGNATURE_V2 must be true or false (got '$require_v2')" ;; esac
case $create_unknown in true|false) ;; *) die "WAGATE_LARAVEL_CREATE_UNKNOWN_SESSIONS must be true or false (got '$create_unknown')" ;; esac
case $dir in /|/tmp|/tmp/|"") die "refusing runtime directory '$dir'" ;; esac

# --- packages -------------------------------------------------------------------------------
find_fpm() { command -v php-fpm8.2 || command -v php-fpm || ls /usr/sbin/php-fpm* 2>/dev/null | head -1; }
have_all() {
	[ -n "$(find_fpm)" ] && command -v nginx >/dev/null && command -v php >/dev/null &&
		[ -f /usr/share/php/Illuminate/autoload.php ] && php -r 'exit(extension_loaded("pdo_sqlite") ? 0 : 1);' 2>/dev/null
}
if ! have_all; then
	pkgs=(php-laravel-framework php-cli php-fpm php-sqlite3 nginx-light)
	echo "laravel-up: installing ${pkgs[*]}"
	if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo -n apt-get); fi
	"${apt_get[@]}" update -qq || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${pkgs[@]}" >/dev/null || die "apt-get install failed"
	have_all || die "packages installed but php-fpm, nginx, php, pdo_sqlite or the framework is still missing"
fi
fpm=$(find_fpm)

# --- a fresh runtime directory ----------------------------------------------------------------
"$src/scripts/down.sh" >/dev/null 2>&1 || true
rm -rf "$dir"
mkdir -p "$dir"/{run,log,conf,app}
app=$dir/app
cp -R "$src"/{app,bootstrap,config,database,public,resources,routes,artisan,composer.json} "$app/"
rm -f "$app"/bootstrap/cache/*.php
mkdir -p "$app"/storage/{logs,framework/views,framework/cache/data}

umask 077
cat >"$app/.env" <<ENV
APP_ENV=production
APP_DEBUG=false
LOG_CHANNEL=single
DB_CONNECTION=sqlite
DB_DATABASE="$app/database/wagate.sqlite"
WAGATE_TOKEN="$token"
WAGATE_SECRET="$secret"
WAGATE_TOKEN_PREVIOUS="$previous_token"
WAGATE_SECRET_PREVIOUS="$previous_secret"
WAGATE_REQUIRE_SIGNATURE_V2=$require_v2
WAGATE_CREATE_UNKNOWN_SESSIONS=$create_unknown
ENV
umask 022

php_user=$(id -un)
if [ "$(id -u)" = 0 ]; then
	# nginx and PHP-FPM workers drop root; nginx must reach FPM's socket (0660).
	php_user=www-data
	pool_user=$'user = www-data\ngroup = www-data'
	listen_owner=$'listen.owner = www-data\nlisten.group = www-data'
	nginx_user='user www-data;'
else
	pool_user=''
	listen_owner=''
	nginx_user=''
fi

# --- database, caches --------------------------------------------------------------------------
touch "$app/database/wagate.sqlite"
php -r '$p = new PDO("sqlite:".$argv[1]); $p->exec("PRAGMA journal_mode=WAL");' "$app/database/wagate.sqlite"
(cd "$app" && php artisan migrate --force --no-interaction >"$dir/log/migrate.log" 2>&1) || { cat "$dir/log/migrate.log" >&2; die "migrate failed"; }
(cd "$app" && php artisan config:cache >/dev/null && php artisan route:cache >/dev/null) || die "config:cache or route:cache failed"

if [ "$(id -u)" = 0 ]; then
	chown -R www-data:www-data "$app/storage" "$app/bootstrap/cache" "$app/database"
	chgrp www-data "$app/.env" && chmod 0640 "$app/.env"
	chmod 0640 "$app/bootstrap/cache/config.php"
fi

# --- configs -----------------------------------------------------------------------------------
render() { # template output
	local t
	t=$(<"$1")
	t=${t//@RUN@/$dir/run}
	t=${t//@LOG@/$dir/log}
	t=${t//@APP@/$app}
	t=${t//@PORT@/$port}
	t=${t//@WORKERS@/$workers}
	t=${t//@BACKLOG@/$backlog}
	t=${t//@PROXY_TIMEOUT@/$proxy_timeout}
	t=${t//@POOL_USER@/$pool_user}
	t=${t//@LISTEN_OWNER@/$listen_owner}
	t=${t//@NGINX_USER@/$nginx_user}
	printf '%s\n' "$t" >"$2"
}
render "$src/deploy/php-fpm.conf" "$dir/conf/php-fpm.conf"
render "$src/deploy/nginx.conf" "$dir/conf/nginx.conf"

# --- start -------------------------------------------------------------------------------------
"$fpm" -t -y "$dir/conf/php-fpm.conf" -p "$dir" >"$dir/log/php-fpm-test.log" 2>&1 || { cat "$dir/log/php-fpm-test.log" >&2; die "php-fpm config test failed"; }
"$fpm" -y "$dir/conf/php-fpm.conf" -p "$dir" || die "php-fpm did not start (see $dir/log/php-fpm.log)"
for _ in $(seq 50); do [ -S "$dir/run/php-fpm.sock" ] && break; sleep 0.1; done
[ -S "$dir/run/php-fpm.sock" ] || die "php-fpm socket did not appear (see $dir/log/php-fpm.log)"

nginx -t -p "$dir" -c "$dir/conf/nginx.conf" -e "$dir/log/nginx-error.log" >"$dir/log/nginx-test.log" 2>&1 || { cat "$dir/log/nginx-test.log" >&2; "$src/scripts/down.sh"; die "nginx config test failed"; }
nginx -p "$dir" -c "$dir/conf/nginx.conf" -e "$dir/log/nginx-error.log" || { "$src/scripts/down.sh"; die "nginx did not start (is port $port free?)"; }

url="http://127.0.0.1:$port"
# Ready when the app answers an authenticated lookup of an unknown session with its JSON 404.
ready=$(WAGATE_PROBE_TOKEN=$token WAGATE_PROBE_SECRET=$secret php -r '
	$headers = "Authorization: Bearer ".getenv("WAGATE_PROBE_TOKEN")."\r\nAccept: application/json\r\n";
	for ($i = 0; $i < 50; $i++) {
		$h = $headers;
		if (($secret = (string) getenv("WAGATE_PROBE_SECRET")) !== "") {
			$ts = time();
			$h .= "X-Wagate-Timestamp: $ts\r\nX-Wagate-Signature: sha256=".hash_hmac("sha256", "$ts.", $secret)."\r\n";
		}
		$ctx = stream_context_create(["http" => ["ignore_errors" => true, "timeout" => 5, "header" => $h]]);
		$body = @file_get_contents($argv[1]."/api/whatsapp/sessions/wagate-ready-probe", false, $ctx);
		if ($body !== false && isset($http_response_header[0]) && strpos($http_response_header[0], " 404") !== false && strpos($body, "message") !== false) { echo "ok"; exit(0); }
		usleep(100000);
	}
	echo isset($http_response_header[0]) ? $http_response_header[0]." ".substr((string) $body, 0, 300) : "no answer";
' "$url") || true
if [ "$ready" != ok ]; then
	"$src/scripts/down.sh"
	die "the app is not answering as expected: $ready (logs in $dir/log, $app/storage/logs)"
fi

version=$(php -r 'require "/usr/share/php/Illuminate/autoload.php"; echo Illuminate\Foundation\Application::VERSION;' 2>/dev/null || echo 8)
umask 077
cat >"$dir/env" <<ENV
WAGATE_LARAVEL_URL=$url
WAGATE_LARAVEL_TOKEN=$token
WAGATE_LARAVEL_SECRET=$secret
WAGATE_LARAVEL_WORKERS=$workers
WAGATE_LARAVEL_BACKLOG=$backlog
WAGATE_LARAVEL_PROXY_TIMEOUT_MS=$((proxy_timeout * 1000))
WAGATE_LARAVEL_DIR=$dir
WAGATE_LARAVEL_DB=$app/database/wagate.sqlite
WAGATE_LARAVEL_VERSION=$version
ENV

echo "laravel-up: Laravel $version on $url (php-fpm workers=$workers backlog=$backlog, nginx read timeout ${proxy_timeout}s, runtime $dir)"
echo "  url:    $url"
if [ "$token" = "$default_token" ]; then echo "  token:  $token (dev default; set WAGATE_LARAVEL_TOKEN)"; else echo "  token:  from WAGATE_LARAVEL_TOKEN"; fi
if [ -n "$secret" ]; then echo "  secret: from WAGATE_LARAVEL_SECRET (HMAC signatures required)"; else echo "  secret: none (signatures off; set WAGATE_LARAVEL_SECRET)"; fi
echo "  env:    $dir/env   (set -a; . $dir/env; set +a)"
echo "  check:  bin/fakelaravel conform -url $url -token \"\$WAGATE_LARAVEL_TOKEN\""
