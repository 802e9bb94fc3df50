#!/usr/bin/env bash
# `make run` on a fresh clone, timed: seconds until the app serves (/api/health) and until it answers
# a question about the bundled corpus. Package caches are bypassed (UV_NO_CACHE, PIP_NO_CACHE_DIR)
# as on a fresh machine. Usage: bash bench/make_run.sh [port]   (port 7860 must be free by default)
set -euo pipefail
port=${1:-7860}
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
git clone -q "$repo" "$dir/ipkb"
cd "$dir/ipkb"
start=$(date +%s.%N)
UV_NO_CACHE=1 PIP_NO_CACHE_DIR=1 IPKB_PORT=$port setsid make run > "$dir/run.log" 2>&1 &
runner=$!
trap 'kill -- -$runner 2>/dev/null || true; rm -rf "$dir"' EXIT
serving=""
for _ in $(seq 1 900); do  # 15 minutes at most
  now=$(date +%s.%N)
  if [ -z "$serving" ] && curl -sf -m 2 "http://127.0.0.1:$port/api/health" >/dev/null 2>&1; then
    serving=$(echo "$now - $start" | bc); echo "serving after $serving s"
  fi
  if [ -n "$serving" ] && curl -s -m 30 -X POST -H 'content-type: application/json' \
      -d '{"question":"宁波专利质押贷款有什么支持？"}' "http://127.0.0.1:$port/api/ask" | grep -q '"refused": *false'; then
    echo "answering after $(echo "$(date +%s.%N) - $start" | bc) s"; exit 0
  fi
  kill -0 $runner 2>/dev/null || { echo "make run stopped:"; tail -20 "$dir/run.log"; exit 1; }
  sleep 1
done
echo "no answer within 15 minutes"; exit 1
