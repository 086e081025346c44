#!/usr/bin/env bash
# One machine, one command: Redis (configured by deploy/redis.conf), N API processes sharing one
# port (`holds serve --processes N`), and M workers.
#
#   API_PROCESSES=4 WORKERS=2 PORT=8080 deploy/run-local.sh
#
# Settings come from the environment as usual (HOLDS_DATABASE_URL, HOLDS_DATA_DIR, ...).
# Ctrl-C or SIGTERM stops everything it started; so does any one of them exiting.
set -euo pipefail
cd "$(dirname "$0")/.."

API_PROCESSES="${API_PROCESSES:-2}"
WORKERS="${WORKERS:-1}"
PORT="${PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6390}"
WORKER_METRICS_PORT="${WORKER_METRICS_PORT:-9101}"
export HOLDS_DATA_DIR="${HOLDS_DATA_DIR:-$PWD/.holds}"

pids=()
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM

# Wait until the Redis at $1 answers PING.
wait_for_redis() {
  python - "$1" <<'PY'
import sys, time, redis
client = redis.Redis.from_url(sys.argv[1])
for _ in range(100):
    try:
        client.ping()
        break
    except redis.ConnectionError:
        time.sleep(0.1)
else:
    raise SystemExit(f"redis-server at {sys.argv[1]} did not start")
PY
}

# One standalone redis-server with deploy/redis.conf on REDIS_PORT.
start_redis() {
  local redis_server
  redis_server=$(python -c 'from app.embedded_redis import redis_server_binary; print(redis_server_binary())')
  mkdir -p "$HOLDS_DATA_DIR/redis"
  "$redis_server" deploy/redis.conf --port "$REDIS_PORT" --dir "$HOLDS_DATA_DIR/redis" \
    --logfile "$HOLDS_DATA_DIR/redis/redis.log" &
  pids+=($!)
  wait_for_redis "redis://127.0.0.1:$REDIS_PORT/0"
}

# Redis. Another topology (a local cluster, say) is another start_* function chosen here.
start_redis
export HOLDS_REDIS_URL="${HOLDS_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"

holds migrate
# HOLDS_REDIS_URL is set, so the API processes serve HTTP only; the workers below do the rest.
holds serve --host 127.0.0.1 --port "$PORT" --processes "$API_PROCESSES" &
pids+=($!)
# Each worker gets its own metrics port, so `holds worker --check --metrics-port P` names it.
for n in $(seq "$WORKERS"); do
  holds worker --metrics-port $((WORKER_METRICS_PORT + n - 1)) &
  pids+=($!)
done
echo "holds: $API_PROCESSES API processes on http://127.0.0.1:$PORT, $WORKERS workers, Redis at $HOLDS_REDIS_URL" >&2
wait -n "${pids[@]}"
