# shellcheck shell=bash
# The shell helpers that script/stack, script/cluster and script/bench
# share: messages, processes and pid files, ports, names that go into SQL,
# and the SQL that makes a database with its user.  Sourced, never run;
# the sourcing script sets `me` (the prefix of its messages) first.

# Messages go to stderr: stdout is for data (sql), and callers' TAP.
say() { printf '%s: %s\n' "${me:?}" "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# A process counts as running unless it is gone or a zombie: an orphaned
# daemon is reparented to init, and a container's init may never reap it.
alive() {
	local stat
	# read, not $(cat): no fork, which counts when looping over /proc.
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# Print the pid in a pid file if that process is running.
running() {
	local pid
	[ -s "$1" ] && read -r pid <"$1" && [ -n "$pid" ] && alive "$pid" &&
		echo "$pid"
}

# Is a live process left in process group $1?  Workers outlive a
# multiwatch that was killed.
group_alive() {
	local f stat state pgrp
	for f in /proc/[0-9]*/stat; do
		{ read -r stat <"$f"; } 2>/dev/null || continue
		read -r state _ pgrp _ <<<"${stat##*) }"
		[ "$pgrp" != "$1" ] || [ "$state" = Z ] || return 0
	done
	return 1
}

# Wait up to $2 seconds for process $1 to end.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	! alive "$1"
}

# Stop process $1 with signal $2, then TERM, then KILL, giving each $3 s.
stop_pid() {
	kill -"$2" "$1" 2>/dev/null || return 0
	wait_gone "$1" "$3" && return 0
	say "pid $1 still running after SIG$2, sending TERM"
	kill -TERM "$1" 2>/dev/null || return 0
	wait_gone "$1" 5 && return 0
	say "pid $1 still running, sending KILL"
	kill -KILL "$1" 2>/dev/null || true
	wait_gone "$1" 5 || true
}

# Print the last lines of a log, to explain a failure.
show_log() {
	[ -f "$1" ] || return 0
	# The error lines first: a long help text may follow them (as
	# mariadb-install-db's does when its bootstrap fails).
	if grep -q -E '\[ERROR\]|ERROR' "$1"; then
		say "errors in $1:"
		grep -E '\[ERROR\]|ERROR' "$1" | tail -n 10 | sed 's/^/    /' >&2
	fi
	say "last lines of $1:"
	tail -n "${2:-20}" "$1" | sed 's/^/    /' >&2
}

# Is something listening on TCP $1:$2?  (bash's /dev/tcp: no ss/netstat.)
port_busy() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Names go into SQL unquoted-safe only if they are plain identifiers.
check_name() {
	[[ $1 =~ ^[A-Za-z0-9_]{1,64}$ ]] || die "not a plain identifier: '$1'"
}

# The SQL that creates (or updates) database $1 with user $2 at each host
# of $4... (password $3, read by the caller from stdin), granted what the
# worker needs and nothing more, and then the schema.  Re-running keeps
# the data and resets the password.  Print it for an admin client's stdin.
# shellcheck disable=SC2016 # backquotes are SQL's
db_create_sql() {
	local db=$1 user=$2 pass=$3 h
	shift 3
	check_name "$db"
	check_name "$user"
	[ -n "$pass" ] || die "db-create reads the password from stdin"
	pass=${pass//\\/\\\\}
	pass=${pass//\'/\\\'}
	printf 'CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n' "$db"
	for h in "$@"; do
		printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$user" "$h" "$pass"
		printf "ALTER USER '%s'@'%s' IDENTIFIED BY '%s';\n" "$user" "$h" "$pass"
		printf "GRANT SELECT, INSERT, UPDATE, DELETE ON \`%s\`.* TO '%s'@'%s';\n" "$db" "$user" "$h"
	done
	printf 'USE `%s`;\n' "$db"
	cat "${root:?}/sql/schema.sql"
}
