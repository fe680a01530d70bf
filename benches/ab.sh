#!/usr/bin/env bash
# Paired A/B of the in-process benches: an older tree and this one, built
# side by side and run alternately, so a slow or busy host affects both.
#   git worktree add /tmp/old <commit>
#   benches/ab.sh /tmp/old [rounds]
set -euo pipefail
old=${1:?usage: benches/ab.sh <old worktree> [rounds]}
rounds=${2:-2}
new=$(cd "$(dirname "$0")/.." && pwd)
for round in $(seq "$rounds"); do
  for tree in "$old" "$new"; do
    cd "$tree"
    echo "##### $tree round $round $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    cargo bench -q --bench wake -- 100 16 2>&1 | grep -E "^\| (critical|info|injected)"
    WARDEN_BENCH_MODES=injected cargo bench -q --bench wake -- 5000 16 2>&1 | grep -E "^\| injected"
    cargo bench -q --bench audit 2>&1 | grep -E "^\| \`"
    cargo bench -q --bench managed 2>&1 | grep -E "^\| 200"
  done
done
