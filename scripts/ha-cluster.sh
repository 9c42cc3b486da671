#!/usr/bin/env bash
# A highly available PostgreSQL for trying and testing allot, on loopback
# only: one etcd, three PostgreSQL nodes managed by Patroni (synchronous
# mode, strict), and PgBouncer in transaction pooling mode in front of
# the leader. Everything comes from Debian's packages (patroni,
# etcd-server, pgbouncer), installed when missing.
#
#   scripts/ha-cluster.sh up             start it (idempotent); prints the store URL
#   scripts/ha-cluster.sh down           stop it and delete its files
#   scripts/ha-cluster.sh status         patronictl list
#   scripts/ha-cluster.sh url            the multi-host store URL for allot
#   scripts/ha-cluster.sh pgbouncer-url  the PgBouncer URL (transaction pooling)
#   scripts/ha-cluster.sh leader         the leader's name and port
#   scripts/ha-cluster.sh failover       a planned switchover to a synchronous standby
#   scripts/ha-cluster.sh kill-primary   SIGKILL the leader's postmaster, return at once
#                                        (its Patroni restarts it: crash recovery, same leader)
#   scripts/ha-cluster.sh kill-leader    SIGKILL the leader's Patroni and postmaster: a failover
#   scripts/ha-cluster.sh start NODE     start a node's Patroni again (after kill-leader)
#
# Settings (environment): HA_DIR (default /tmp/allot-ha), HA_PORT (the
# first node's PostgreSQL port, default 5433: nodes use HA_PORT..HA_PORT+2),
# HA_REST_PORT (Patroni's REST API of the first node, default 8433),
# HA_ETCD_PORT (default 2479, and the next one for its peers),
# HA_PGBOUNCER_PORT (default 6433). Timings are short, for tests: ttl 10 s,
# loop_wait 1 s, retry_timeout 4 s. fsync stays on.
set -euo pipefail

DIR=${HA_DIR:-/tmp/allot-ha}
PORT=${HA_PORT:-5433}
ETCD_PORT=${HA_ETCD_PORT:-2479}
ETCD_PEER=$((ETCD_PORT + 1))
BOUNCER_PORT=${HA_PGBOUNCER_PORT:-6433}
SCOPE=allot-ha
DB=allot
REST_PORT=${HA_REST_PORT:-8433}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
NODES=(node1 node2 node3)

log() { echo "ha-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

node_port() { echo $((PORT + ${1#node} - 1)); }
rest_port() { echo $((REST_PORT + ${1#node} - 1)); }

# as_postgres runs a command as the postgres user: PostgreSQL and
# PgBouncer refuse to run as root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_missing() {
  local missing=()
  command -v patroni >/dev/null 2>&1 || missing+=(patroni)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
  [ -n "$PGBIN" ] || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "need root to install ${missing[*]}"
    log "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
}

# alive PID WHAT: PID is a live process (not a zombie, not a reused pid)
# whose command line contains WHAT.
alive() {
  local pid=$1 what=$2
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$what"
}

# running PIDFILE WHAT: the pid file names a live process running WHAT.
running() { [ -f "$1" ] && alive "$(head -1 "$1")" "$2"; }

# start NAME PIDFILE CMD...: runs CMD in the background as postgres,
# logging to $DIR/NAME.log, unless PIDFILE names a live process.
start() {
  local name=$1 pidfile=$2
  shift 2
  if running "$pidfile" "$name"; then return; fi
  as_postgres sh -c 'exec "$@" >>"'"$DIR/$name.log"'" 2>&1 & echo $! >"'"$pidfile"'"' sh "$@"
}

write_node_config() {
  local n=$1 port rest
  port=$(node_port "$n")
  rest=$(rest_port "$n")
  cat >"$DIR/$n.yml" <<EOF
scope: $SCOPE
name: $n
restapi:
  listen: 127.0.0.1:$rest
  connect_address: 127.0.0.1:$rest
etcd3:
  hosts: 127.0.0.1:$ETCD_PORT
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: true
    postgresql:
      use_pg_rewind: true
      parameters:
        fsync: 'on'
        synchronous_commit: 'on'
        wal_level: replica
        hot_standby: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        wal_log_hints: 'on'
        max_connections: 200
  initdb:
    - encoding: UTF8
    - auth: trust
postgresql:
  listen: 127.0.0.1:$port
  connect_address: 127.0.0.1:$port
  data_dir: $DIR/$n/data
  bin_dir: $PGBIN
  pgpass: $DIR/$n/pgpass
  basebackup:
    - checkpoint: fast
  parameters:
    unix_socket_directories: '$DIR/$n'
  authentication:
    superuser:
      username: postgres
    replication:
      username: postgres
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
  callbacks:
    on_start: $DIR/on-role-change.sh
    on_role_change: $DIR/on-role-change.sh
tags:
  nofailover: false
  noloadbalance: false
EOF
}

# The leader's callback points PgBouncer at it. Patroni calls it with
# ACTION ROLE CLUSTER; the node's port comes from HA_NODE_PORT, which each
# Patroni is started with (its callbacks inherit its environment).
write_callback() {
  cat >"$DIR/on-role-change.sh.new" <<EOF
#!/bin/sh
# Patroni callback: when this node becomes the primary, PgBouncer follows.
role=\$2
case "\$role" in master|primary) ;; *) exit 0 ;; esac
port=\$HA_NODE_PORT
[ -f "$DIR/pgbouncer.ini" ] && [ -n "\$port" ] || exit 0
sed -i "s/^$DB = .*/$DB = host=127.0.0.1 port=\$port dbname=$DB/" "$DIR/pgbouncer.ini"
psql -h 127.0.0.1 -p $BOUNCER_PORT -U postgres pgbouncer -c RELOAD >/dev/null 2>&1 || true
EOF
  chmod +x "$DIR/on-role-change.sh.new"
  mv "$DIR/on-role-change.sh.new" "$DIR/on-role-change.sh"
}

leader() {
  local n
  for n in "${NODES[@]}"; do
    if curl -sf -o /dev/null "http://127.0.0.1:$(rest_port "$n")/primary"; then
      echo "$n $(node_port "$n")"
      return 0
    fi
  done
  return 1
}

wait_leader() {
  local i
  for i in $(seq 1 "${1:-120}"); do
    if leader >/dev/null; then return 0; fi
    sleep 0.5
  done
  return 1
}

url() {
  echo "postgres://postgres@127.0.0.1:$PORT,127.0.0.1:$((PORT + 1)),127.0.0.1:$((PORT + 2))/$DB?target_session_attrs=read-write&sslmode=disable"
}

pgbouncer_url() {
  echo "postgres://postgres@127.0.0.1:$BOUNCER_PORT/$DB?sslmode=disable&default_query_exec_mode=simple_protocol"
}

# wait_writable PORT: the primary on PORT has both standbys streaming,
# one of them synchronously (strict synchronous mode takes no commit
# without one), and Patroni has named it (only it may be promoted).
wait_writable() {
  local port=$1 i
  local q="SELECT count(*) || ',' || count(*) FILTER (WHERE sync_state = 'sync') FROM pg_stat_replication WHERE state = 'streaming' AND application_name LIKE 'node%'"
  for i in $(seq 1 240); do
    if [ "$(psql -h 127.0.0.1 -p "$port" -U postgres -Atc "$q" 2>/dev/null)" = "2,1" ] && sync_standby >/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  die "the standbys of 127.0.0.1:$port do not stream (one synchronously) after 2 minutes: see $DIR/node*.log"
}

# sql PORT SQL...: runs statements on the primary, bounded in time (a
# strict synchronous primary without a standby would wait for ever).
sql() {
  local port=$1 q
  shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  timeout 30 psql -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt "${args[@]}" ||
    die "on 127.0.0.1:$port: $* failed or timed out"
}

write_pgbouncer() {
  local lport=$1
  echo '"postgres" ""' >"$DIR/userlist.txt"
  cat >"$DIR/pgbouncer.ini.new" <<INI
[databases]
$DB = host=127.0.0.1 port=$lport dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits,options,statement_timeout,lock_timeout,idle_in_transaction_session_timeout
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
  mv "$DIR/pgbouncer.ini.new" "$DIR/pgbouncer.ini"
  chown postgres: "$DIR/pgbouncer.ini" "$DIR/userlist.txt" 2>/dev/null || true
}

bouncer_answers() { psql -h 127.0.0.1 -p "$BOUNCER_PORT" -U postgres pgbouncer -qc 'SHOW VERSION' >/dev/null 2>&1; }

up() {
  install_missing
  command -v curl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 || die "needs curl and python3"
  if [ -e "$DIR" ] && [ "$(stat -c %U "$DIR")" != root ] && [ "$(stat -c %U "$DIR")" != postgres ]; then
    die "$DIR belongs to $(stat -c %U "$DIR"), not root or postgres: remove it or set HA_DIR"
  fi
  mkdir -p "$DIR"
  chown postgres: "$DIR" 2>/dev/null || true
  chmod 0755 "$DIR"
  write_callback
  start etcd "$DIR/etcd.pid" etcd --name ha --data-dir "$DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "ha=http://127.0.0.1:$ETCD_PEER" --enable-v2=false
  local i
  for i in $(seq 1 60); do
    curl -sf -o /dev/null "http://127.0.0.1:$ETCD_PORT/health" && break
    sleep 0.5
  done
  curl -sf -o /dev/null "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not start: see $DIR/etcd.log"
  # A new cluster: node1 bootstraps alone, then the others join it. An
  # existing one (all stopped, or some): every node starts at once, since
  # only the synchronous standby may take over a leader that is gone.
  local fresh=1 n
  [ -s "$DIR/node1/data/PG_VERSION" ] && fresh=0
  for n in "${NODES[@]}"; do
    write_node_config "$n"
    mkdir -p "$DIR/$n"
    chown postgres: "$DIR/$n" "$DIR/$n.yml" 2>/dev/null || true
    chmod 0700 "$DIR/$n"
    start "$n" "$DIR/$n.pid" env HA_NODE_PORT="$(node_port "$n")" patroni "$DIR/$n.yml"
    if [ "$n" = node1 ] && [ "$fresh" = 1 ]; then
      wait_leader 120 || die "node1 did not bootstrap a leader: see $DIR/node1.log"
    fi
  done
  wait_leader 120 || die "no leader: see $DIR/node*.log"
  local lport
  lport=$(leader) || die "no leader"
  lport=${lport#* }
  wait_writable "$lport"
  if [ "$(sql "$lport" "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 0 ]; then
    sql "$lport" "CREATE DATABASE $DB"
  fi
  # PgBouncer can't pass the timeouts allot sets when it connects (it
  # refuses unknown startup parameters, so it is told to ignore them):
  # the database carries allot's defaults itself.
  sql "$lport" "ALTER DATABASE $DB SET statement_timeout = '10s'" "ALTER DATABASE $DB SET lock_timeout = '10s'" \
    "ALTER DATABASE $DB SET idle_in_transaction_session_timeout = '30s'"
  # PgBouncer's config is written on every up, pointing at the leader now
  # (the callback keeps it pointing there on every change).
  write_pgbouncer "$lport"
  if running "$DIR/pgbouncer.pid" pgbouncer; then
    psql -h 127.0.0.1 -p "$BOUNCER_PORT" -U postgres pgbouncer -qc RELOAD >/dev/null 2>&1 || true
  else
    as_postgres pgbouncer -d "$DIR/pgbouncer.ini" >/dev/null
  fi
  for i in $(seq 1 40); do
    bouncer_answers && break
    sleep 0.25
  done
  bouncer_answers || die "PgBouncer does not answer on 127.0.0.1:$BOUNCER_PORT: see $DIR/pgbouncer.log"
  url
}

down() {
  [ -d "$DIR" ] || return 0
  local f n i left
  for n in "${NODES[@]}"; do
    if running "$DIR/$n.pid" "$DIR/$n.yml"; then kill "$(cat "$DIR/$n.pid")" 2>/dev/null || true; fi
  done
  if running "$DIR/pgbouncer.pid" pgbouncer; then kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true; fi
  for i in $(seq 1 40); do
    left=0
    for n in "${NODES[@]}"; do running "$DIR/$n.pid" "$DIR/$n.yml" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.25
  done
  # What is left goes by force: a Patroni that did not stop, a postmaster
  # whose Patroni was killed. Only processes that are what their pid file
  # says are killed.
  for n in "${NODES[@]}"; do
    if running "$DIR/$n.pid" "$DIR/$n.yml"; then kill -9 "$(cat "$DIR/$n.pid")" 2>/dev/null || true; fi
    f="$DIR/$n/data/postmaster.pid"
    if running "$f" "postgres"; then kill -9 "$(head -1 "$f")" 2>/dev/null || true; fi
  done
  if running "$DIR/etcd.pid" etcd; then kill "$(cat "$DIR/etcd.pid")" 2>/dev/null || true; fi
  sleep 0.5
  if running "$DIR/etcd.pid" etcd; then kill -9 "$(cat "$DIR/etcd.pid")" 2>/dev/null || true; fi
  rm -rf "$DIR"
}

status() { patronictl -c "$DIR/node1.yml" list; }

# sync_standby prints the member Patroni has as synchronous standby.
sync_standby() {
  local n
  for n in "${NODES[@]}"; do
    curl -sf "http://127.0.0.1:$(rest_port "$n")/cluster" 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    if m["role"] == "sync_standby" and m["state"] in ("running", "streaming"):
        print(m["name"]); sys.exit(0)
sys.exit(1)' && return 0
  done
  return 1
}

failover() {
  local cur cand
  cur=$(leader | cut -d' ' -f1) || die "no leader"
  cand=$(sync_standby) || die "no synchronous standby to switch over to"
  patronictl -c "$DIR/node1.yml" switchover --leader "$cur" --candidate "$cand" --force
  local i now=""
  for i in $(seq 1 120); do
    now=$(leader 2>/dev/null | cut -d' ' -f1) && [ -n "$now" ] && [ "$now" != "$cur" ] && break
    sleep 0.5
  done
  [ -n "$now" ] && [ "$now" != "$cur" ] || die "the switchover did not happen: $cur is still the leader (see $DIR/*.log)"
  wait_writable "$(node_port "$now")"
  leader
}

kill_primary() {
  local n
  n=$(leader | cut -d' ' -f1) || die "no leader"
  [ -f "$DIR/$n/data/postmaster.pid" ] || die "$n has no postmaster.pid: its PostgreSQL is not running"
  kill -9 "$(head -1 "$DIR/$n/data/postmaster.pid")"
  echo "$n"
}

# kill_leader takes the whole leader node down, Patroni and PostgreSQL,
# so that a standby must take over once the leader key expires (ttl).
kill_leader() {
  local n
  n=$(leader | cut -d' ' -f1) || die "no leader"
  kill -9 "$(cat "$DIR/$n.pid")" 2>/dev/null || true
  kill -9 "$(head -1 "$DIR/$n/data/postmaster.pid")" 2>/dev/null || true
  echo "$n"
}

start_node() {
  local n=${1:-}
  [ -f "$DIR/$n.yml" ] || die "no node ${n:-(none given)}: give node1, node2 or node3"
  start "$n" "$DIR/$n.pid" env HA_NODE_PORT="$(node_port "$n")" patroni "$DIR/$n.yml"
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
url) url ;;
pgbouncer-url) pgbouncer_url ;;
leader) leader || die "no leader" ;;
failover) failover ;;
kill-primary) kill_primary ;;
kill-leader) kill_leader ;;
start) start_node "${2:-}" ;;
*) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
