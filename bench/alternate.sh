#!/usr/bin/env bash
# alternate.sh runs bench/webhookload against the bare handler and dingdesk
# (SQLite, MariaDB/MySQL) in turn, round after round, so that all of them
# see the same machine load; then prints the median of every figure per
# target. Each run gets a fresh server (and a fresh database), started here
# and stopped by its pid.
#
#   bench/alternate.sh                      # 3 rounds, 20 000 messages, 32 senders
#   ROUNDS=5 N=20000 C=32 TARGETS="bare sqlite mysql" bench/alternate.sh
#   BIN_before=/tmp/dingdesk-old TARGETS="sqlite sqlite@before" bench/alternate.sh
#   RATE=1500 TARGETS=sqlite bench/alternate.sh   # open loop at 1 500 msg/s
#   KNOWLEDGE=/tmp/kb100k/kb.jsonl TEXTS=/tmp/kb100k/questions.txt READY_S=60 \
#     TARGETS=sqlite bench/alternate.sh            # a bench/kbgen knowledge base
#
# CONFIG is the dingdesk config (examples/dingdesk.yaml by default);
# KNOWLEDGE, when set, replaces its bot.knowledge (comma-separated files);
# TEXT or TEXTS, when set, are passed to webhookload as -text / -texts (one
# question, or a file of questions one a line); READY_S is how long a
# server may take to answer /readyz (6 s by default).
#
# A target is bare, sqlite or mysql, optionally @name for another dingdesk
# build given as BIN_name. MYSQL_DSN is the server (root@tcp(127.0.0.1:3306)/
# by default); a database dingdesk_bench_alt is created for every run.
# Output: RESULT lines (label, replies/s, reply p50 ms, p99 ms, server CPU
# ms/reply, peak RSS MiB, database CPU ms/reply, start-up to ready ms, load
# average) and a median table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N=${N:-20000}
C=${C:-32}
USERS=${USERS:-1000}
RATE=${RATE:-0}
TARGETS=${TARGETS:-"bare sqlite mysql"}
OUT=${OUT:-/tmp/dingdesk-alternate}
MYSQL_DSN=${MYSQL_DSN:-"root@tcp(127.0.0.1:3306)/"}
PORT=${PORT:-18180}
FAKE=${FAKE:-127.0.0.1:18190}
CONFIG=${CONFIG:-examples/dingdesk.yaml}
KNOWLEDGE=${KNOWLEDGE:-}
READY_S=${READY_S:-6}
SECRET=test-secret-0123456789
# Optional load-tool and server settings, only passed on when set.
load_args=()
[ -n "${TEXT:-}" ] && load_args+=(-text "$TEXT")
[ -n "${TEXTS:-}" ] && load_args+=(-texts "$TEXTS")
kb_env=()
[ -n "$KNOWLEDGE" ] && kb_env+=("DINGDESK_BOT_KNOWLEDGE=$KNOWLEDGE")
mkdir -p "$OUT"
go build -o "$OUT/dingdesk" ./cmd/dingdesk
go build -o "$OUT/bare" ./bench/bare
go build -o "$OUT/load" ./bench/webhookload

server_pid=""
stop() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; fi; }
trap stop EXIT

# ready waits for url to answer 200 and prints the milliseconds since $1.
ready() {
  local t0=$1 url=$2
  for _ in $(seq 1 $((READY_S * 100))); do
    if curl -fs -o /dev/null "$url"; then echo $(( ($(date +%s%N) - t0) / 1000000 )); return; fi
    sleep 0.01
  done
  echo "server did not get ready: $url" >&2; return 1
}

run() { # target round
  local target=$1 kind=${1%@*} bin="$OUT/dingdesk" dbpid=0 started url
  if [[ $target == *@* ]]; then local var="BIN_${target#*@}"; bin=${!var}; fi
  rm -f "$OUT/bench.db" "$OUT/bench.db-wal" "$OUT/bench.db-shm"
  started=$(date +%s%N)
  case $kind in
  bare)
    "$OUT/bare" -listen "127.0.0.1:$PORT" 2>"$OUT/server.log" & server_pid=$!
    url="http://127.0.0.1:$PORT/dingtalk/callback"
    # The bare handler has no readiness probe: a GET of its route answers.
    local ms; for _ in $(seq 1 300); do curl -s -o /dev/null "$url" && break; sleep 0.01; done
    ms=$(( ($(date +%s%N) - started) / 1000000 ));;
  sqlite|mysql)
    local dsn="$OUT/bench.db"
    if [ "$kind" = mysql ]; then
      mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS dingdesk_bench_alt; CREATE DATABASE dingdesk_bench_alt CHARACTER SET utf8mb4"
      dsn="${MYSQL_DSN%/}/dingdesk_bench_alt"
      dbpid=$(pgrep -o mariadbd || pgrep -o mysqld || echo 0)
    fi
    started=$(date +%s%N)
    DINGDESK_SERVER_LISTEN="127.0.0.1:$PORT" DINGDESK_DINGTALK_CLIENT_SECRET=$SECRET \
    DINGDESK_DINGTALK_API_BASE="http://$FAKE" DINGDESK_STORAGE_DRIVER=$kind DINGDESK_STORAGE_DSN="$dsn" \
    env "${kb_env[@]}" DINGDESK_LOG_LEVEL=warn "$bin" serve -c "$CONFIG" 2>"$OUT/server.log" & server_pid=$!
    ms=$(ready "$started" "http://127.0.0.1:$PORT/readyz")
    url="http://127.0.0.1:$PORT/dingtalk/callback";;
  *) echo "unknown target $target" >&2; exit 2;;
  esac
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  local line
  line=$("$OUT/load" -url "$url" -n "$N" -c "$C" -users "$USERS" -rate "$RATE" -fake "$FAKE" \
    -pid "$server_pid" -dbpid "$dbpid" -label "$target" "${load_args[@]}" 2>>"$OUT/load.log" | tee -a "$OUT/load.log" | grep '^RESULT' || true)
  stop
  [ -n "$line" ] || { echo "run $target failed (see $OUT/load.log, $OUT/server.log)" >&2; return; }
  printf '%s\t%s\t%s\n' "$line" "$ms" "$load" | tee -a "$OUT/results.tsv"
}

: >"$OUT/results.tsv"
echo "# label replies/s p50-ms p99-ms cpu-ms/reply peak-rss-MiB db-cpu-ms/reply startup-ms load1"
for r in $(seq 1 "$ROUNDS"); do
  for t in $TARGETS; do run "$t" "$r"; done
done
echo "# medians over $ROUNDS rounds"
awk -F'\t' '
  { n[$2]++; for (i = 3; i <= 10; i++) v[$2, n[$2], i] = $i; if (!($2 in seen)) { seen[$2]; order[++k] = $2 } }
  function median(t, i,   m, a, j, x, y, tmp) {
    m = n[t]; for (j = 1; j <= m; j++) a[j] = v[t, j, i]
    for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] + 0 < a[x] + 0) { tmp = a[x]; a[x] = a[y]; a[y] = tmp }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END {
    printf "%-16s %10s %8s %8s %12s %10s %12s %10s %6s\n", "target", "replies/s", "p50 ms", "p99 ms", "cpu ms/reply", "peak MiB", "db ms/reply", "start ms", "load1"
    for (j = 1; j <= k; j++) { t = order[j]
      printf "%-16s %10.0f %8.2f %8.2f %12.3f %10.1f %12.3f %10.0f %6.2f\n", t, median(t, 3), median(t, 4), median(t, 5), median(t, 6), median(t, 7), median(t, 8), median(t, 9), median(t, 10) }
  }' "$OUT/results.tsv"
