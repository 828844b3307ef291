#!/usr/bin/env bash
# Stops the private nginx and PHP-FPM masters started by up.sh (by their pid files under
# $WAGATE_LARAVEL_DIR, default /tmp/wagate-laravel). The runtime directory stays for its logs;
# up.sh starts from a fresh one.
set -uo pipefail
dir=${WAGATE_LARAVEL_DIR:-/tmp/wagate-laravel}

# stop NAME PIDFILE: graceful QUIT, then TERM, then KILL; only if the pid is that program.
stop() {
	local name=$1 pidfile=$2 pid
	[ -f "$pidfile" ] || return 0
	pid=$(<"$pidfile")
	if ! [[ $pid =~ ^[0-9]+$ ]] || ! grep -q "$name" "/proc/$pid/cmdline" 2>/dev/null; then
		rm -f "$pidfile"
		return 0
	fi
	local sig
	for sig in QUIT TERM KILL; do
		kill -"$sig" "$pid" 2>/dev/null || break
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break 2; sleep 0.1; done
	done
	rm -f "$pidfile"
	echo "laravel-down: stopped $name ($pid)"
}

stop nginx "$dir/run/nginx.pid"
stop php-fpm "$dir/run/php-fpm.pid"
exit 0
