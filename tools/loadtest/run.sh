#!/usr/bin/env bash
# make load: build korrigo and the load generator, run every scenario against a
# server started on a fresh PostgreSQL database (created and dropped here) with
# Redis, then a smaller run on SQLite with the in-memory broker. Loopback only,
# bounded in time (LOAD_PG_TIMEOUT + LOAD_SQLITE_TIMEOUT < 10 min). Reports,
# server logs and CPU profiles go to loadtest-out/. See docs/PERFORMANCE.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
export GOFLAGS=-mod=readonly # go.mod and go.sum are complete (make tidy checks it); nothing may rewrite them
PG=${KORRIGO_LOAD_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
REDIS=${KORRIGO_LOAD_REDIS_URL:-redis://127.0.0.1:6379/0}
OUT=${LOAD_OUT:-loadtest-out}
PG_TIMEOUT=${LOAD_PG_TIMEOUT:-400}
SQLITE_TIMEOUT=${LOAD_SQLITE_TIMEOUT:-120}
SUBSCRIBERS=${LOAD_SUBSCRIBERS:-5000}

go build -o bin/korrigo ./cmd/korrigo && go build -o bin/loadtest ./tools/loadtest || exit 1
rm -rf "$OUT" && mkdir -p "$OUT"

db=korrigo_load_$$
psql "$PG" -qc "CREATE DATABASE $db" >/dev/null || exit 1
trap 'psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
dburl=$(python3 -c "import sys,urllib.parse as u;p=u.urlparse(sys.argv[1]);print(p._replace(path='/'+sys.argv[2]).geturl())" "$PG" "$db")

status=0
timeout --signal=INT --kill-after=60 "$PG_TIMEOUT" bin/loadtest -label postgres -server-bin bin/korrigo \
  -database-url "$dburl" -pg-url "$dburl" -redis-url "$REDIS" -out "$OUT" \
  -subscribers "$SUBSCRIBERS" "$@" || status=1

timeout --signal=INT --kill-after=60 "$SQLITE_TIMEOUT" bin/loadtest -label sqlite -server-bin bin/korrigo \
  -database-url "sqlite://$OUT/sqlite/korrigo.db" -out "$OUT" -addr 127.0.0.1:18081 -pprof-addr 127.0.0.1:16061 \
  -subscribers 500 -integrator-copies 1000 -split-pages 400 -scans 5 -finalize 20 -bench-seconds 4 -profile-seconds 8 "$@" || status=1

for p in "$OUT"/cpu-*.pprof; do
  [ -s "$p" ] && go tool pprof -top -nodecount=40 bin/korrigo "$p" > "${p%.pprof}.top.txt" 2>/dev/null
done
cat "$OUT"/report-postgres.md "$OUT"/report-sqlite.md > "$OUT/report.md" 2>/dev/null
echo "reports: $OUT/report.md, $OUT/report-*.json; profiles: $OUT/cpu-*.pprof (top: *.top.txt)"
exit $status
