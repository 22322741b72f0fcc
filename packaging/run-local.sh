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

build/bin/kelp-volume -ip=127.0.0.1 -ip.bind=127.0.0.1 -port="$PORT" -dir="$DATA/volume" -max=16 \
  -master="127.0.0.1:$MASTER_PORT" -preStopSeconds=1 >"$DATA/kelp.log" 2>&1 &
KELP_PID=$!
# /healthz turns 200 once kelp is registered with the master.
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

# A first upload and download through the cluster, to show it works.
ASSIGN=$(curl -sf "http://127.0.0.1:$MASTER_PORT/dir/assign" || true)
FID=$(printf '%s' "$ASSIGN" | sed -n 's/.*"fid":"\([^"]*\)".*/\1/p')
DEMO=""
if [ -n "$FID" ]; then
  curl -sf -F file=@README.md "http://127.0.0.1:$PORT/$FID" >/dev/null &&
    curl -sf "http://127.0.0.1:$PORT/$FID" | cmp -s - README.md &&
    DEMO="  uploaded README.md as $FID and read it back: http://127.0.0.1:$PORT/$FID"
fi

cat <<MSG

kelp is running:
  master      http://127.0.0.1:$MASTER_PORT   (log: $DATA/master.log)
  kelp-volume http://127.0.0.1:$PORT   (log: $DATA/kelp.log, data: $DATA/volume)

  curl http://127.0.0.1:$PORT/status?pretty=y

${DEMO:-  (the demo upload did not complete; see the logs)}

The master creates volumes on kelp and places writes there:
  curl http://127.0.0.1:$MASTER_PORT/dir/assign                  # -> {"fid":"<fid>","url":"127.0.0.1:$PORT",...}
  curl -F file=@README.md http://127.0.0.1:$PORT/<fid>
  curl http://127.0.0.1:$PORT/<fid>
  $WEED upload -master=127.0.0.1:$MASTER_PORT README.md
  $WEED download -server=127.0.0.1:$MASTER_PORT -dir=/tmp <fid>
  echo volume.list | $WEED shell -master=127.0.0.1:$MASTER_PORT

kelp also serves every volume found in $DATA/volume, including ones written
by \`weed volume\`. Press Ctrl-C to stop both.
MSG
wait "$KELP_PID"
