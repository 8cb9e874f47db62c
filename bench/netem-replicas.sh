#!/usr/bin/env bash
# Measure hookd on PostgreSQL with 1, 2 and 3 replicas, ingest and end to
# end, with a round-trip time added between hookd and PostgreSQL.
#
# With --rtt-ms above 0 (the default is 2) it needs root: it creates a
# network namespace and a veth pair, and runs everything of the bench in
# the namespace - the load generator, the bare server, the hookd replicas
# and the e2e sink - so that they talk to each other over the namespace's
# own loopback, with no delay, and only the path to PostgreSQL, which stays
# on the host, crosses the veth:
#
#   [namespace hookd-bench: load generator -> bare / hookd-1..N -> sink]
#                 | hkb1 10.77.0.2          (the delay is here only)
#                 | hkb0 10.77.0.1 (host) -> PostgreSQL
#
# The delay is tc netem on both ends of the veth (half the RTT each way)
# when the kernel has netem. A kernel without it (no sch_netem) gets the
# delay from 'hookd bench delay-proxy' instead: a relay on 10.77.0.1:5432,
# on the host, that holds each chunk of data half the RTT in each
# direction; it runs under real-time scheduling (chrt -f 10), as netem's
# timers run in the kernel, so that its wake-ups do not wait for a busy
# CPU (it uses a few percent of one). Either way PostgreSQL is reached at
# 10.77.0.1:5432: when it
# does not listen there itself (listen_addresses is not '*'), the relay
# does (with no delay of its own under netem), so that PostgreSQL, shared
# with other work, is neither restarted nor reconfigured. When it does
# listen on every address, the script adds a trust line for 10.77.0.0/24
# to pg_hba.conf and reloads it; the trap at exit removes the line and
# reloads again, deletes the namespace (and with it the veth and its
# qdiscs) and stops the relay.
#
# --connections is the load generator's keep-alive connections, spread
# over the replicas round-robin; with --per-replica, N replicas get N times
# as many (the offered load grows with the replicas).
#
# With --rtt-ms 0 it runs the same loop on the host, against PostgreSQL on
# 127.0.0.1, with no namespace (add --netns to go through the namespace and
# the relay all the same: the relay's own cost).
#
# Each run is 'hookd bench' (ingest) or 'hookd bench e2e' with
# --postgres and --replicas N on a fresh schema; the replica counts are
# interleaved round by round so that a disturbance of the machine falls on
# all of them. The bench's own few queries (creating the schema, counting
# the events) take the delayed path too. During each run the script
# samples pg_stat_activity every 0.25 s from the host, directly, for
# hookd's connections (application_name hookd_bench) and counts their
# states and wait events, and times a SELECT 1 every 0.1 s from the
# namespace over the delayed path (the round trip under load). At the end
# it prints a summary and the median ratios of N replicas to one.
#
# Usage: bench/netem-replicas.sh [--rtt-ms 2] [--replicas "1 2 3"] [--rounds 3]
#          [--modes "ingest e2e"] [--connections 64] [--per-replica]
#          [--duration 5s] [--warmup 2s]
#          [--hookd ./hookd] [--out DIR] [--netns]
set -euo pipefail

rtt_ms=2
replicas="1 2 3"
rounds=3
modes="ingest e2e"
connections=64
duration=5s
warmup=2s
hookd=./hookd
out=""
force_netns=0
per_replica=0
pg_port=5432
pg_user=postgres
pg_db=test
ns=hookd-bench
veth_host=hkb0
veth_ns=hkb1
host_ip=10.77.0.1
ns_ip=10.77.0.2
app=hookd_bench

die() { echo "netem-replicas: $*" >&2; exit 1; }
say() { echo "netem-replicas: $*" >&2; }

while [ $# -gt 0 ]; do
	case "$1" in
	--rtt-ms) rtt_ms=$2; shift 2 ;;
	--replicas) replicas=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	--connections) connections=$2; shift 2 ;;
	--duration) duration=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--hookd) hookd=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--netns) force_netns=1; shift ;;
	--per-replica) per_replica=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done

[ -x "$hookd" ] || die "no hookd binary at $hookd: build it with 'go build -o hookd ./cmd/hookd', or give --hookd PATH"
hookd=$(cd "$(dirname "$hookd")" && pwd)/$(basename "$hookd")
command -v psql >/dev/null || die "psql is needed (the RTT check and the wait-event sampling)"
half=$(awk -v r="$rtt_ms" 'BEGIN { if (r !~ /^[0-9]+(\.[0-9]+)?$/) exit 1; printf "%.3fms", r / 2 }') ||
	die "--rtt-ms: give a number of milliseconds, such as 2"
use_ns=0
if [ "$(awk -v r="$rtt_ms" 'BEGIN { print (r > 0) }')" = 1 ] || [ "$force_netns" = 1 ]; then
	use_ns=1
fi
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/hookd-netem-replicas.XXXXXX")
mkdir -p "$out"
out=$(cd "$out" && pwd)

host_dsn="host=127.0.0.1 port=$pg_port user=$pg_user dbname=$pg_db sslmode=disable"
hostq() { psql "$host_dsn application_name=netem-replicas" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
hostq 'SELECT 1' >/dev/null || die "PostgreSQL is not reachable at 127.0.0.1:$pg_port as $pg_user, database $pg_db"

# Cleanup: everything set up below registers its undoing here.
proxy_pid=""
sampler_pid=""
probe_pid=""
hba_file=""
hba_line=""
ns_made=0
cleanup() {
	set +e
	if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; fi
	if [ -n "$probe_pid" ]; then kill "$probe_pid" 2>/dev/null; wait "$probe_pid" 2>/dev/null; fi
	true
	if [ -n "$proxy_pid" ]; then
		kill "$proxy_pid" 2>/dev/null
		wait "$proxy_pid" 2>/dev/null
		[ -s "$out/proxy.stderr" ] && say "$(tail -n 1 "$out/proxy.stderr")"
	fi
	if [ "$ns_made" = 1 ]; then
		ip netns del "$ns" && say "deleted the namespace $ns (and the veth pair with it)"
	fi
	if [ -n "$hba_line" ] && [ -n "$hba_file" ]; then
		grep -vxF "$hba_line" "$hba_file" >"$hba_file.netem-tmp" && cat "$hba_file.netem-tmp" >"$hba_file" && rm -f "$hba_file.netem-tmp"
		hostq 'SELECT pg_reload_conf()' >/dev/null && say "removed the pg_hba.conf line for $host_ip/24 and reloaded PostgreSQL"
	fi
}
trap cleanup EXIT
trap 'say "a command failed at line $LINENO; stopping"' ERR
trap 'exit 130' INT TERM

dsn="postgres://$pg_user@127.0.0.1:$pg_port/$pg_db?sslmode=disable&application_name=$app"
run_in=()
how="none (PostgreSQL on 127.0.0.1, the bench on the host)"
if [ "$use_ns" = 1 ]; then
	[ "$(id -u)" = 0 ] || die "adding a delay needs root (ip netns, ip link, tc); run with sudo, or --rtt-ms 0"
	command -v ip >/dev/null || die "the ip command (iproute2) is needed"
	if ip netns list | grep -qw "^$ns"; then
		die "a namespace $ns exists already (a run in progress, or one that was killed): 'ip netns del $ns' if it is stale"
	fi
	say "creating the namespace $ns and the veth pair $veth_host ($host_ip, host) - $veth_ns ($ns_ip, namespace)"
	ip netns add "$ns"
	ns_made=1
	ip link add "$veth_host" type veth peer name "$veth_ns"
	ip link set "$veth_ns" netns "$ns"
	ip addr add "$host_ip/24" dev "$veth_host"
	ip link set "$veth_host" up
	ip netns exec "$ns" ip addr add "$ns_ip/24" dev "$veth_ns"
	ip netns exec "$ns" ip link set "$veth_ns" up
	ip netns exec "$ns" ip link set lo up
	run_in=(ip netns exec "$ns")

	proxy_delay=0s
	if [ "$(awk -v r="$rtt_ms" 'BEGIN { print (r > 0) }')" = 1 ]; then
		if tc qdisc add dev "$veth_host" root netem delay "$half" 2>"$out/tc.err" &&
			ip netns exec "$ns" tc qdisc add dev "$veth_ns" root netem delay "$half" 2>>"$out/tc.err"; then
			how="tc netem delay $half on $veth_host and on $veth_ns (RTT ${rtt_ms} ms between the namespace and the host)"
		else
			say "tc netem is not available here ($(head -n 1 "$out/tc.err")): this kernel has no sch_netem"
			say "the delay comes from 'hookd bench delay-proxy' on $host_ip:$pg_port instead: $half each way, in user space on the host"
			proxy_delay=$half
			how="hookd bench delay-proxy on $host_ip:$pg_port, $half each way (no netem in this kernel)"
		fi
	else
		how="none, but through the namespace and the relay on $host_ip:$pg_port (--netns)"
	fi

	listen=$(hostq 'SHOW listen_addresses')
	if [ "$proxy_delay" = 0s ] && { [ "$listen" = '*' ] || [ "$listen" = '0.0.0.0' ]; }; then
		hba_file=$(hostq 'SHOW hba_file')
		hba_line="host all all $host_ip/24 trust # hookd netem-replicas.sh, removed at its exit"
		say "PostgreSQL listens on '$listen': adding '$hba_line' to $hba_file and reloading"
		printf '%s\n' "$hba_line" >>"$hba_file"
		hostq 'SELECT pg_reload_conf()' >/dev/null
	else
		if [ "$proxy_delay" = 0s ]; then
			say "PostgreSQL listens on '$listen' only, not on $host_ip: relaying $host_ip:$pg_port to 127.0.0.1:$pg_port with hookd bench delay-proxy --delay 0 (no restart of PostgreSQL)"
		fi
		# Under real-time scheduling, as netem's timers run in the kernel: on
		# busy cores its wake-ups would otherwise wait for a CPU and add to
		# the delay. It uses a few percent of a core.
		rt=()
		command -v chrt >/dev/null && rt=(chrt -f 10)
		"${rt[@]}" "$hookd" bench delay-proxy --listen "$host_ip:$pg_port" --to "127.0.0.1:$pg_port" --delay "$proxy_delay" \
			>"$out/proxy.stdout" 2>"$out/proxy.stderr" &
		proxy_pid=$!
		for _ in $(seq 100); do [ -s "$out/proxy.stdout" ] && break; sleep 0.05; done
		[ -s "$out/proxy.stdout" ] || die "the relay did not start: $(cat "$out/proxy.stderr")"
	fi
	dsn="postgres://$pg_user@$host_ip:$pg_port/$pg_db?sslmode=disable&application_name=$app"
fi

# The round trip as hookd sees it.
say "added delay: $how"
if [ "$use_ns" = 1 ] && command -v ping >/dev/null; then
	"${run_in[@]}" ping -c 5 -i 0.2 -q "$host_ip" | tail -n 1 | sed 's/^/netem-replicas: ping from the namespace to the host: /' >&2 || true
	[ -n "$proxy_pid" ] && say "(ping does not cross the relay: its RTT is the veth's alone)"
fi
rtt_line=$( { echo '\timing on'; for _ in $(seq 41); do echo 'SELECT 1;'; done; } |
	"${run_in[@]}" psql "$dsn" -XAtq 2>&1 | awk '/^Time:/ { t[n++] = $2 } END {
		if (n < 2) { print "no timing read"; exit }
		# The first includes the session start; sort the rest.
		for (i = 1; i < n; i++) for (j = i + 1; j < n; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
		m = n - 1; printf "SELECT 1 round trip over %d queries: min %.3f ms, median %.3f ms, max %.3f ms", m, t[1], t[1 + int(m / 2)], t[n - 1] }')
say "$rtt_line (psql in $([ "$use_ns" = 1 ] && echo "the namespace" || echo "the host"), DSN host $([ "$use_ns" = 1 ] && echo "$host_ip" || echo 127.0.0.1))"

{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $0 --rtt-ms $rtt_ms --replicas '$replicas' --rounds $rounds --modes '$modes' --connections $connections$([ "$per_replica" = 1 ] && echo " --per-replica")$([ "$force_netns" = 1 ] && echo " --netns") --duration $duration --warmup $warmup"
	echo "# added delay: $how"
	echo "# $rtt_line"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); busiest processes:"
	top -bn1 -w 200 2>/dev/null | sed -n '7,13p' | sed 's/^/#   /'
} | tee "$out/summary.txt"

# sample_waits FILE: start a psql in the background (sampler_pid) that
# appends, every 0.25 s, the states and wait events of hookd's connections
# (application_name $app) to FILE.
cat >"$out/waits.sql" <<SQL
SELECT state, coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '-'), count(*),
	CASE WHEN state = 'idle' THEN '' ELSE left(regexp_replace(ltrim(query), '\s+', ' ', 'g'), 32) END,
	now()
	FROM pg_stat_activity WHERE application_name = '$app' AND backend_type = 'client backend'
	GROUP BY 1, 2, 3, 5, 6 ORDER BY 4 DESC;
\watch 0.25
SQL
sample_waits() {
	psql "$host_dsn application_name=netem-replicas-sampler" -XAtq -f "$out/waits.sql" >>"$1" 2>/dev/null &
	sampler_pid=$!
}

# probe_rtt FILE: start a psql in the background (probe_pid), where hookd
# runs and over its path to PostgreSQL, that times a SELECT 1 every 0.1 s
# into FILE: the round trip under the load of the run.
printf '%s\n' '\timing on' 'SELECT 1;' '\watch 0.1' >"$out/probe.sql"
probe_rtt() {
	"${run_in[@]}" psql "${dsn/application_name=$app/application_name=netem-replicas-probe}" -XAtq -f "$out/probe.sql" >>"$1" 2>/dev/null &
	probe_pid=$!
}

# rtt_summary FILE: the median and the 90th percentile of the probe's times.
rtt_summary() {
	awk '/^Time:/ { print $2 }' "$1" | sort -n | awk '{ t[NR] = $1 } END { if (NR == 0) { print "-"; exit }
		p = int(NR * 0.9); if (p < 1) p = 1
		printf "%.2f/%.2f", t[int((NR + 1) / 2)], t[p] }'
}

# waits FILE: the samples summed, each (state, wait event) as a share of
# all the connection-samples, the largest first; with "busy", only the
# connections not idle, by their statement (its first characters).
waits() {
	awk -F'|' -v busy="${2:-}" 'NF >= 5 && (busy == "" || $1 != "idle") {
		k = $1 " (" $2 ":" $3 ")"; if (busy != "") k = k " [" $5 "]"
		n[k] += $4; tot += $4 } END {
		for (k in n) printf "%.0f%% %s\n", 100 * n[k] / tot, k }' "$1" | sort -rn | head -n 8 | paste -sd';' | sed 's/;/; /g'
}

# conns FILE: hookd's connections per sample, in all and not idle (means).
conns_in_use() {
	awk -F'|' 'NF >= 6 { s[$6] = 1; all += $4; if ($1 != "idle") busy += $4 } END {
		n = 0; for (k in s) n++
		if (n == 0) { print "no samples"; exit }
		printf "%.1f connections, %.2f of them not idle (means over %d samples)", all / n, busy / n, n }' "$1"
}

# proc_cpu PID: user+system seconds of a process.
proc_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

printf '%-7s %-3s %-5s %9s %8s %9s %9s %-18s %-9s %-11s %s\n' mode N round "hookd/s" ratio p99 "srv cpu" "cpu srv/gen/other" "relay cpu" "rtt p50/p90" conns | tee -a "$out/summary.txt"
for round in $(seq "$rounds"); do
	for mode in $modes; do
		for n in $replicas; do
			f="$out/$mode-r$n-$round.txt"
			sub=()
			[ "$mode" = e2e ] && sub=(e2e)
			conns=$connections
			[ "$per_replica" = 1 ] && conns=$((connections * n))
			args=(bench "${sub[@]}" --postgres "$dsn" --replicas "$n" --connections "$conns" --duration "$duration" --warmup "$warmup")
			echo "# command: ${run_in[*]} $hookd $(printf '%q ' "${args[@]}")" >"$f"
			: >"$f.waits"
			sample_waits "$f.waits"
			: >"$f.rtt"
			probe_rtt "$f.rtt"
			p0=0
			[ -n "$proxy_pid" ] && p0=$(proc_cpu "$proxy_pid")
			t0=$(date +%s.%N)
			status=0
			"${run_in[@]}" "$hookd" "${args[@]}" >>"$f" 2>"$f.stderr" || status=$?
			t1=$(date +%s.%N)
			kill "$sampler_pid" "$probe_pid" 2>/dev/null || true # they may have ended: a PostgreSQL restart
			wait "$sampler_pid" "$probe_pid" 2>/dev/null || true
			sampler_pid="" probe_pid=""
			rtt=$(rtt_summary "$f.rtt")
			relay="-"
			if [ -n "$proxy_pid" ]; then
				relay=$(awk -v a="$p0" -v b="$(proc_cpu "$proxy_pid")" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", (b - a) / (e - s) }')
			fi
			echo "# pg_stat_activity of hookd's connections, 0.25 s samples over the whole run: $(waits "$f.waits")" >>"$f"
			echo "# the same, connections not idle, by statement: $(waits "$f.waits" busy)" >>"$f"
			echo "# hookd's connections to PostgreSQL (all replicas): $(conns_in_use "$f.waits")" >>"$f"
			echo "# SELECT 1 round trip from where hookd runs, every 0.1 s over the whole run: median/p90 $rtt ms" >>"$f"
			note=""
			if [ "$status" != 0 ]; then
				say "run $mode N=$n round $round exited with status $status: see $f and $f.stderr"
				note=" FAILED(exit $status)"
			fi
			if [ "$mode" = ingest ]; then
				# The hookd row: connections hookd req/s p50 p99 max errors non2xx cpu ratio.
				awk -v m="$mode" -v n="$n" -v r="$round" -v relay="$relay" -v conns="$conns" -v note="$note" -v rtt="$rtt" '
					$2 == "hookd" && $3 ~ /^[0-9]+$/ && !done { split($9, c, "/"); printf "%-7s %-3s %-5s %9s %8s %9s %9s %-18s %-9s %-11s %s\n", m, n, r, $3, $11, $5, c[1], $9, relay, rtt, conns note; done = 1 }' "$f"
			else
				awk -v m="$mode" -v n="$n" -v r="$round" -v relay="$relay" -v conns="$conns" -v note="$note" -v rtt="$rtt" '
					/^ingest: client/ { p99 = $7; cpu = $8; split(cpu, c, "/") }
					/^delivered: hookd/ { d = $5 }
					/^end-to-end events/ { ratio = $NF }
					END { printf "%-7s %-3s %-5s %9s %8s %9s %9s %-18s %-9s %-11s %s\n", m, n, r, d, ratio, p99, c[1], cpu, relay, rtt, conns note }' "$f"
			fi | tee -a "$out/summary.txt"
		done
	done
done

# Medians per mode and replica count, and their ratios to one replica.
{
	echo
	echo "# median over rounds (hookd/s: ingest req/s, or e2e delivered events/s; ratio: to the bare server of the same run)"
	awk 'NF == 11 && $1 !~ /^#/ && $1 != "mode" { k = $1 " " $2; v[k] = v[k] " " $4; r[k] = r[k] " " $5; keys[k] = 1 }
		function median(s,   a, n, i, j, x) {
			n = split(s, a, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		END {
			for (k in keys) { split(k, p, " "); med[k] = median(v[k]); printf "%-7s N=%-2s median %8.0f /s (rounds:%s), ratio to bare %s\n", p[1], p[2], med[k], v[k], median(r[k]) }
			for (k in keys) { split(k, p, " "); one = p[1] " 1"; if (p[2] != 1 && (one in med) && med[one] > 0) printf "%-7s N=%s / N=1: %.2f\n", p[1], p[2], med[k] / med[one] }
		}' "$out/summary.txt" | sort
	echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# each run's whole output: $out/<mode>-r<N>-<round>.txt"
} | tee -a "$out/summary.txt"
