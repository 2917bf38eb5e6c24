#!/usr/bin/env bash
# A/B comparison of two option sets of the event-driven ingestion phase, on a machine whose
# speed drifts: both platforms run AT THE SAME TIME, each under its own wrk (50 keep-alive
# connections, 10-metric batches, 8 s after 3 s of warm-up), and the report is CPU time
# (user + system, from /proc/<pid>/stat) per request of each server process — a figure the
# drift affects far less than requests per second. Needs wrk and a built project.
#
#   scripts/ab-cpu.sh '{"http":"raw"}' '{"http":"node"}' [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?options JSON for A}; B=${2:?options JSON for B}; ROUNDS=${3:-3}
command -v wrk >/dev/null || { echo "ab-cpu: needs wrk (apt-get install -y wrk)" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done; sleep 2; rm -rf "$WORK"; }
trap cleanup EXIT
node -e "import('./dist/cli/bench/ingestion.js').then((m) => process.stdout.write(m.wrkScript({ id: 'ka-10', connections: 50, batch: 10, close: false })))" > "$WORK/ka-10.lua"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
echo "ab-cpu: A=$A B=$B, $ROUNDS rounds, machine: $(nproc) cores, $(node --version)"
for round in $(seq "$ROUNDS"); do
  PIDS=(); PORTS=()
  for side in A B; do
    options=$A; [ "$side" = B ] && options=$B
    port=$(free_port); PORTS+=("$port")
    cat > "$WORK/$side.yaml" <<YAML
dataDir: $WORK/data-$side-$round
actors: [control, queue, ingestion]
http: { host: 127.0.0.1, backlog: 4096 }
ingestion: { rateLimitPerSecond: 1000000, keepAliveTimeoutMs: 30000 }
plugins: { ingestion.server: { id: ingestion.event-driven, options: $options } }
YAML
    CRAFT_LOG=warn node bin/craft.js up --config "$WORK/$side.yaml" --ingestion-port "$port" > "$WORK/$side.log" 2>&1 &
    PIDS+=($!)
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  done
  load() { wrk -t1 -c50 -d"$1" --timeout 10s -s "$WORK/ka-10.lua" "http://127.0.0.1:${PORTS[0]}/metrics" > "$WORK/A.out" & local w=$!
           wrk -t1 -c50 -d"$1" --timeout 10s -s "$WORK/ka-10.lua" "http://127.0.0.1:${PORTS[1]}/metrics" > "$WORK/B.out"; wait $w; }
  load 3s
  a0=$(ticks "${PIDS[0]}"); b0=$(ticks "${PIDS[1]}")
  load 8s
  a1=$(ticks "${PIDS[0]}"); b1=$(ticks "${PIDS[1]}")
  hz=$(getconf CLK_TCK)
  report() { local requests; requests=$(grep -o '"requests":[0-9]*' "$WORK/$1.out" | cut -d: -f2)
             echo "  $1: $requests requests, $(( ($3 - $2) * 1000000 / hz / requests )) µs CPU per request"; }
  echo "round $round"; report A "$a0" "$a1"; report B "$b0" "$b1"
  for pid in "${PIDS[@]}"; do kill -INT "$pid"; done
  for pid in "${PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; done
done
