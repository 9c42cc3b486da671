#!/usr/bin/env bash
# Measures two allot binaries side by side on the embedded default (SQLite),
# or on PostgreSQL with PG set: the gapless target of "allot bench" and the
# claims target of "allot bench claims", each beside the no-op handler of
# the same run, on a fresh database (file) per run. Rounds alternate the order (old new, new old,
# ...) so drift on a noisy machine falls on both. Prints every run, the
# medians, and new ÷ old.
#
#   scripts/bench-vs.sh OLD_BINARY NEW_BINARY [ROUNDS] [DURATION]
#   (SCENARIOS="gapless" or "claims" runs only one of them; with
#   PG=postgres://postgres@127.0.0.1:5432, a server URL without a path,
#   each run gets a fresh database allot_bench_vs there, dropped and
#   created with psql. allot bench reaches PostgreSQL on SQLite runs too,
#   for its baselines: it must be running, see scripts/services.sh)
#
# For example, against the current main's binary:
#   git worktree add /tmp/main-old main && (cd /tmp/main-old && go build -o /tmp/allot-old ./cmd/allot)
#   go build -o bin/allot ./cmd/allot
#   scripts/bench-vs.sh /tmp/allot-old bin/allot 5 5s
set -euo pipefail
export LC_ALL=C
if [ $# -lt 2 ]; then
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
old=$1 new=$2 rounds=${3:-5} dur=${4:-5s}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "bench-vs.sh: $b is not an executable" >&2; exit 2; }; done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# fresh: the store flags of a run on a fresh database.
fresh() {
  if [ -n "${PG:-}" ]; then
    if ! psql "$PG/postgres" -qc 'DROP DATABASE IF EXISTS allot_bench_vs WITH (FORCE)' -c 'CREATE DATABASE allot_bench_vs' >"$dir/err" 2>&1; then
      echo "bench-vs.sh: can't make a fresh database at $PG:" >&2; cat "$dir/err" >&2; return 1
    fi
    echo "--pg $PG/allot_bench_vs?sslmode=disable"
  else
    rm -f "$dir"/r.db*
    echo "--store sqlite://$dir/r.db"
  fi
}

# rate BINARY SCENARIO TARGET: one run; prints "target_req/s noop_req/s".
rate() {
  local out store rc=0
  store=$(fresh) || exit 1
  local -a flags
  read -r -a flags <<<"$store"
  if [ "$2" = gapless ]; then
    out=$("$1" bench "${flags[@]}" --only noop,gapless --rate 0 --repeat 1 --duration "$dur" --markdown 2>"$dir/err") || rc=$?
  else
    out=$("$1" bench claims "${flags[@]}" --only noop,allot --rate 0 --repeat 1 --duration "$dur" --markdown 2>"$dir/err") || rc=$?
  fi
  if [ $rc != 0 ]; then
    echo "bench-vs.sh: $1 $2 exited with $rc:" >&2
    cat "$dir/err" >&2
    exit 1
  fi
  awk -F'|' -v t="$3" '
    function num(s) { gsub(/[ ,]/, "", s); return s }
    { name = $2; gsub(/^ +| +$/, "", name) }
    name == t && !got { tr = num($3); got = 1 }
    name == "baseline noop" && !gotn { nr = num($3); gotn = 1 }
    END { if (!got || !gotn) exit 1; print tr, nr }' <<<"$out" && return
  echo "bench-vs.sh: $1 $2 gave no figures:" >&2
  cat "$dir/err" >&2
  exit 1
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for scenario in ${SCENARIOS:-gapless claims}; do
  target="gapless count=1"; [ $scenario = claims ] && target=allot
  where=SQLite; [ -n "${PG:-}" ] && where=PostgreSQL
  echo "## $scenario on $where ($target), $rounds rounds of $dur, old $old, new $new"
  echo
  echo "| round | old req/s | old × noop | new req/s | new × noop | new ÷ old |"
  echo "|--:|--:|--:|--:|--:|--:|"
  : >"$dir/old" ; : >"$dir/new"; : >"$dir/ratio"; : >"$dir/oldx"; : >"$dir/newx"
  for i in $(seq 1 "$rounds"); do
    if [ $((i % 2)) = 1 ]; then
      o=$(rate "$old" $scenario "$target"); n=$(rate "$new" $scenario "$target")
    else
      n=$(rate "$new" $scenario "$target"); o=$(rate "$old" $scenario "$target")
    fi
    read -r ot on <<<"$o"; read -r nt nn <<<"$n"
    echo "$ot" >>"$dir/old"; echo "$nt" >>"$dir/new"
    awk -v a="$ot" -v b="$on" 'BEGIN { printf "%.3f\n", a / b }' >>"$dir/oldx"
    awk -v a="$nt" -v b="$nn" 'BEGIN { printf "%.3f\n", a / b }' >>"$dir/newx"
    awk -v a="$nt" -v b="$ot" 'BEGIN { printf "%.3f\n", a / b }' >>"$dir/ratio"
    printf '| %d | %s | %.2f× | %s | %.2f× | %.2f× |\n' "$i" "$ot" "$(tail -1 "$dir/oldx")" "$nt" "$(tail -1 "$dir/newx")" "$(tail -1 "$dir/ratio")"
  done
  mo=$(median <"$dir/old"); mn=$(median <"$dir/new")
  printf '| **median** | %s | %.2f× | %s | %.2f× | **%.2f×** (ratio of medians %.2f×) |\n\n' \
    "$mo" "$(median <"$dir/oldx")" "$mn" "$(median <"$dir/newx")" "$(median <"$dir/ratio")" "$(awk -v a="$mn" -v b="$mo" 'BEGIN { print a / b }')"
done
