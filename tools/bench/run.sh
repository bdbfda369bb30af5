#!/usr/bin/env bash
# make bench: the grading-desk benchmarks through the HTTP handler on PostgreSQL,
# and pgbench running the equivalent bare SQL on the same server in the same run,
# printed as ratios (ours / pgbench). 16 clients each.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOFLAGS=-mod=readonly # go.mod and go.sum are complete (make tidy checks it); nothing may rewrite them
PG=${KORRIGO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
export KORRIGO_TEST_POSTGRES_URL=$PG
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CLIENTS=16

db=korrigo_bench_$$
psql "$PG" -qc "CREATE DATABASE $db" >/dev/null
trap 'psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
benchurl=$(python3 -c "import sys,urllib.parse as u;p=u.urlparse(sys.argv[1]);print(p._replace(path='/'+sys.argv[2]).geturl())" "$PG" "$db")
psql "$benchurl" -q -f tools/bench/setup.sql >/dev/null

pgtps() { # script → transactions per second
  pgbench -n -c $CLIENTS -j 2 -T "$SECONDS_PER_RUN" -f "$1" "$benchurl" 2>/dev/null |
    awk '/^tps = / {print $3; exit}'
}
lock_tps=$(pgtps tools/bench/lock_cycle.sql)
save_tps=$(pgtps tools/bench/autosave.sql)

out=$(go test ./graph/ -run '^$' -bench 'BenchmarkLockCycle|BenchmarkAutosave|BenchmarkAnnotationUpdate' \
  -benchtime="${SECONDS_PER_RUN}s" -count=1 | tee /dev/stderr)
ops() { echo "$out" | awk -v n="$1" '$1 ~ "^"n"(-[0-9]+)?$" {printf "%.0f", 1e9/$3}'; }
lock_ops=$(ops BenchmarkLockCycle); save_ops=$(ops BenchmarkAutosave); ann_ops=$(ops BenchmarkAnnotationUpdate)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n%-28s %12s %14s %8s\n' "operation ($CLIENTS clients)" "korrigo op/s" "pgbench tps" "ratio"
printf '%-28s %12s %14.0f %8s\n' "lock acquire+release" "$lock_ops" "$lock_tps" "$(ratio "$lock_ops" "$lock_tps")"
printf '%-28s %12s %14.0f %8s\n' "autosave (2 KB)" "$save_ops" "$save_tps" "$(ratio "$save_ops" "$save_tps")"
printf '%-28s %12s %14s %8s\n' "annotation update" "$ann_ops" "-" "-"

# Realtime fan-out (issue 4): N WebSocket subscribers of copyLockChanged on one exam, one publisher;
# server in a child process. BENCH_FANOUT=0 skips it; KORRIGO_FANOUT_N=1000,5000 picks the sizes.
if [ "${BENCH_FANOUT:-1}" != 0 ]; then
  go test ./server/ -run '^$' -bench BenchmarkFanout -benchtime=20x -count=1
fi

# PDF work (DESIGN.md §8-§9), through the isolated child process as in production:
# a 200-sheet A3 scan cut into 400 A4 pages (100 booklets), a 12-page copy finalized
# with 40 annotations, a 12-page copy masked for correctors. qpdf (when installed)
# regroups the same scan into 100 files of 2 A3 sheets: the page-splitting part of
# the work, without the cut into halves or the rebuild from page content.
pdfout=$(go test ./jobs/ -run '^$' -bench 'BenchmarkSplitJob400Pages|BenchmarkFinalize12Pages40Marks|BenchmarkMask12Pages' \
  -benchtime="${BENCH_PDF_RUNS:-3}x" -count=1 | tee /dev/stderr)
metric() { echo "$pdfout" | awk -v n="$1" -v u="$2" '$1 ~ "^"n"(-[0-9]+)?$" {for (i=1;i<=NF;i++) if ($i==u) {print $(i-1); exit}}'; }
split_pps=$(metric BenchmarkSplitJob400Pages pages/s)
printf '\n%-44s %12s\n' "PDF work" "korrigo"
printf '%-44s %12s\n' "split 200 A3 → 400 A4 (pages/s)" "$split_pps"
printf '%-44s %12s\n' "finalize 12 pages + 40 marks (ms/copy)" "$(metric BenchmarkFinalize12Pages40Marks ms/copy)"
printf '%-44s %12s\n' "mask 12 pages for correctors (ms/copy)" "$(metric BenchmarkMask12Pages ms/copy)"
if command -v qpdf >/dev/null; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"; psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
  KORRIGO_BENCH_SCAN="$tmp/scan.pdf" go test ./jobs/ -run '^TestWriteBenchScan$' -count=1 >/dev/null
  mkdir "$tmp/out"
  start=$(date +%s.%N); qpdf --split-pages=2 "$tmp/scan.pdf" "$tmp/out/p-%d.pdf"; end=$(date +%s.%N)
  qpdf_pps=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", 400 / (b - a) }')
  printf '%-44s %12s   (korrigo/qpdf %s)\n' "qpdf --split-pages=2, same scan (pages/s)" "$qpdf_pps" "$(ratio "$split_pps" "$qpdf_pps")"
else
  echo "qpdf not installed: no split comparison"
fi
