#!/usr/bin/env bash
# `make run`: a local Go master and kelp-volume on loopback, data under ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
WEED=.venv/bin/weed
DATA=${KELP_DATA:-$PWD/data}
MASTER_PORT=${MASTER_PORT:-9333}
PORT=${PORT:-8080}
mkdir -p "$DATA/master" "$DATA/volume"

cleanup() { kill "${KELP_PID:-}" "${MASTER_PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$WEED" master -ip=127.0.0.1 -ip.bind=127.0.0.1 -port="$MASTER_PORT" -mdir="$DATA/master" -peers=none \
  -volumeSizeLimitMB=1024 -defaultReplication=000 >"$DATA/master.log" 2>&1 &
MASTER_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$MASTER_PORT/dir/status" >/dev/null && break; sleep 0.2; done

build/bin/kelp-volume -ip=127.0.0.1 -ip.bind=127.0.0.1 -port="$PORT" -dir="$DATA/volume" -max=8 \
  -master="127.0.0.1:$MASTER_PORT" >"$DATA/kelp.log" 2>&1 &
KELP_PID=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/status" >/dev/null && break; sleep 0.2; done

cat <<MSG

kelp is running:
  master      http://127.0.0.1:$MASTER_PORT   (log: $DATA/master.log)
  kelp-volume http://127.0.0.1:$PORT   (log: $DATA/kelp.log, data: $DATA/volume)

  curl http://127.0.0.1:$PORT/status?pretty=y

kelp serves every volume found in $DATA/volume, including ones written by
\`weed volume\`, and stores uploads into them:
  curl -F file=@README.md http://127.0.0.1:$PORT/<vid>,<fid>
  curl http://127.0.0.1:$PORT/<vid>,<fid>

Registration with the master (volume creation and /dir/assign through it) is
not built yet, so the master does not place writes on kelp.
Press Ctrl-C to stop both.
MSG
wait "$KELP_PID"
