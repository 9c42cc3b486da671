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
# first node's PostgreSQL port, default 5433: nodes use HA_PORT..HA_PORT+2,
# Patroni's REST API 8433..8435), HA_ETCD_PORT (default 2479),
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
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
NODES=(node1 node2 node3)

log() { echo "ha-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

node_port() { echo $((PORT + ${1#node} - 1)); }
rest_port() { echo $((8433 + ${1#node} - 1)); }

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

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start NAME PIDFILE CMD...: runs CMD in the background as postgres,
# logging to $DIR/NAME.log, unless PIDFILE names a live process.
start() {
  local name=$1 pidfile=$2
  shift 2
  if running "$pidfile"; then return; fi
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
  cat >"$DIR/on-role-change.sh" <<EOF
#!/bin/sh
# Patroni callback: when this node becomes the primary, PgBouncer follows.
role=\$2
case "\$role" in master|primary) ;; *) exit 0 ;; esac
port=\$HA_NODE_PORT
[ -f "$DIR/pgbouncer.ini" ] && [ -n "\$port" ] || exit 0
sed -i "s/^$DB = .*/$DB = host=127.0.0.1 port=\$port dbname=$DB/" "$DIR/pgbouncer.ini"
psql -h 127.0.0.1 -p $BOUNCER_PORT -U postgres pgbouncer -c RELOAD >/dev/null 2>&1 || true
EOF
  chmod +x "$DIR/on-role-change.sh"
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

up() {
  install_missing
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
  local n
  for n in "${NODES[@]}"; do
    write_node_config "$n"
    mkdir -p "$DIR/$n"
    chown postgres: "$DIR/$n" "$DIR/$n.yml" 2>/dev/null || true
    chmod 0700 "$DIR/$n"
    start "$n" "$DIR/$n.pid" env HA_NODE_PORT="$(node_port "$n")" patroni "$DIR/$n.yml"
    # The first node bootstraps; the others wait for it before joining.
    if [ "$n" = node1 ]; then wait_leader 120 || die "no leader: see $DIR/node1.log"; fi
  done
  local lport
  lport=$(leader | cut -d' ' -f2)
  psql -h 127.0.0.1 -p "$lport" -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$lport" -U postgres -qc "CREATE DATABASE $DB"
  # PgBouncer can't pass the timeouts allot sets when it connects (it
  # refuses unknown startup parameters, so it is told to ignore them):
  # the database carries allot's defaults itself.
  psql -h 127.0.0.1 -p "$lport" -U postgres -qc "ALTER DATABASE $DB SET statement_timeout = '10s'" \
    -c "ALTER DATABASE $DB SET lock_timeout = '10s'" -c "ALTER DATABASE $DB SET idle_in_transaction_session_timeout = '30s'"
  if [ ! -f "$DIR/pgbouncer.ini" ]; then
    echo '"postgres" ""' >"$DIR/userlist.txt"
    cat >"$DIR/pgbouncer.ini" <<EOF
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
max_client_conn = 1000
default_pool_size = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits,options,statement_timeout,lock_timeout,idle_in_transaction_session_timeout
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
EOF
    chown postgres: "$DIR/pgbouncer.ini" "$DIR/userlist.txt" 2>/dev/null || true
  fi
  if ! running "$DIR/pgbouncer.pid"; then
    as_postgres pgbouncer -d "$DIR/pgbouncer.ini" >/dev/null
  fi
  # Both standbys stream, one of them synchronously (strict synchronous
  # mode takes no write without one), before up returns.
  local q="SELECT count(*) || ',' || count(*) FILTER (WHERE sync_state = 'sync') FROM pg_stat_replication WHERE state = 'streaming' AND application_name LIKE 'node%'"
  for i in $(seq 1 240); do
    [ "$(psql -h 127.0.0.1 -p "$lport" -U postgres -Atc "$q" 2>/dev/null)" = "2,1" ] && break
    sleep 0.5
  done
  [ "$(psql -h 127.0.0.1 -p "$lport" -U postgres -Atc "$q")" = "2,1" ] ||
    die "the standbys did not start replicating (one synchronously): see $DIR/node2.log and $DIR/node3.log"
  # And Patroni has recorded which one is synchronous: only it may be
  # promoted, so until then a failover has no candidate.
  for i in $(seq 1 120); do
    sync_standby >/dev/null && break
    sleep 0.5
  done
  sync_standby >/dev/null || die "Patroni named no synchronous standby: see $DIR/node*.log"
  url
}

down() {
  local f
  for f in "$DIR"/node*.pid "$DIR/pgbouncer.pid" "$DIR/etcd.pid"; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  # What is left (a postmaster whose Patroni was killed) goes by force.
  for f in "$DIR"/node*/data/postmaster.pid "$DIR"/node*.pid "$DIR/pgbouncer.pid" "$DIR/etcd.pid"; do
    [ -f "$f" ] || continue
    kill -9 "$(head -1 "$f")" 2>/dev/null || true
  done
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
  patronictl -c "$DIR/node1.yml" switchover --leader "$cur" --candidate "$cand" --force >/dev/null
  wait_leader 60 || die "no leader after the switchover"
  leader
}

kill_primary() {
  local n
  n=$(leader | cut -d' ' -f1) || die "no leader"
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
