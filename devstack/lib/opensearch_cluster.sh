# shellcheck shell=bash
# A three-node OpenSearch 2.x cluster on loopback, for the node-loss drills and for trying
# replicas and failover by hand. Each node is a named instance of lib/opensearch.sh
# (its own JVM, data directory and pid file: $DEVSTACK_HOME/opensearch-cluster-N), joined
# through discovery.seed_hosts instead of single-node discovery.
#
#   node  name                  HTTP   transport
#   1     opensearch-cluster-1  9220   9320
#   2     opensearch-cluster-2  9221   9321
#   3     opensearch-cluster-3  9222   9322
#
# DEVSTACK_OPENSEARCH_CLUSTER_PORT moves the first HTTP port (the others follow, transport = HTTP + 100);
# DEVSTACK_OPENSEARCH_CLUSTER_HEAP sets every node's heap (default 448m: three JVMs on a small machine).
# SEARCH_URL for it: http://127.0.0.1:9220,http://127.0.0.1:9221,http://127.0.0.1:9222

OSC_SIZE=3
OSC_BASE_PORT="${DEVSTACK_OPENSEARCH_CLUSTER_PORT:-9220}"
OSC_HEAP="${DEVSTACK_OPENSEARCH_CLUSTER_HEAP:-448m}"
OSC_NAME=searchsync-cluster

_osc_node_name() { echo "opensearch-cluster-$1"; }
_osc_port() { echo $((OSC_BASE_PORT + $1 - 1)); }

_osc_check_node() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] && (($1 <= OSC_SIZE)) \
    || { echo "[devstack] opensearch-cluster has nodes 1..$OSC_SIZE, not '${1:-}'" >&2; exit 2; }
}

# _osc_node N FUNCTION: run one lib/opensearch.sh function for node N in a subshell (that
# library resolves its instance from the environment when it is sourced).
_osc_node() {
  local n="$1" fn="$2" i seeds="" managers=""
  for ((i = 1; i <= OSC_SIZE; i++)); do
    seeds+="${seeds:+,}127.0.0.1:$(($(_osc_port "$i") + 100))"
    managers+="${managers:+,}$(_osc_node_name "$i")"
  done
  env -u DEVSTACK_OPENSEARCH_WRITE_QUEUE_SIZE -u DEVSTACK_OPENSEARCH_WRITE_THREADS \
    DEVSTACK_OPENSEARCH_NAME="$(_osc_node_name "$n")" DEVSTACK_OPENSEARCH_PORT="$(_osc_port "$n")" \
    DEVSTACK_OPENSEARCH_TRANSPORT_PORT="$(($(_osc_port "$n") + 100))" DEVSTACK_OPENSEARCH_HEAP="$OSC_HEAP" \
    DEVSTACK_OPENSEARCH_CLUSTER_NAME="$OSC_NAME" DEVSTACK_OPENSEARCH_SEED_HOSTS="$seeds" \
    DEVSTACK_OPENSEARCH_INITIAL_MANAGERS="$managers" \
    bash -c 'set -euo pipefail; source "$1/lib/common.sh"; source "$1/lib/opensearch.sh"; "$2"' _ "$DEVSTACK_DIR" "$fn"
}

_osc_pidfile() { echo "$DEVSTACK_HOME/$(_osc_node_name "$1")/opensearch.pid"; }

# _osc_any_url: the HTTP URL of the first node that answers.
_osc_any_url() {
  local i
  for ((i = 1; i <= OSC_SIZE; i++)); do
    if curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$(_osc_port "$i")/" 2>/dev/null; then
      echo "http://127.0.0.1:$(_osc_port "$i")"
      return 0
    fi
  done
  return 1
}

_osc_health() {  # _osc_health URL [QUERY]: the cluster's status word
  curl -fsS -m 15 "$1/_cluster/health?${2:-}" 2>/dev/null | tr -d '\n' \
    | grep -o '"status"[[:space:]]*:[[:space:]]*"[a-z]*"' | sed 's/.*"\([a-z]*\)"$/\1/'
}

opensearch_cluster_urls() {
  local i urls=""
  for ((i = 1; i <= OSC_SIZE; i++)); do urls+="${urls:+,}http://127.0.0.1:$(_osc_port "$i")"; done
  echo "$urls"
}

opensearch-cluster_up() {
  local i url status
  # spawn every JVM first: none becomes healthy before a quorum of cluster managers is up
  for ((i = 1; i <= OSC_SIZE; i++)); do
    DEVSTACK_OPENSEARCH_NO_WAIT=1 _osc_node "$i" opensearch_up
  done
  local deadline=$((SECONDS + 240))
  until url="$(_osc_any_url)" \
      && [[ "$(_osc_health "$url" "wait_for_nodes=$OSC_SIZE&wait_for_status=yellow&timeout=10s")" =~ ^(green|yellow)$ ]] \
      && [[ "$(curl -fsS -m 5 "$url/_cat/nodes?h=name" 2>/dev/null | grep -c .)" == "$OSC_SIZE" ]]; do
    for ((i = 1; i <= OSC_SIZE; i++)); do
      read_pidfile "$(_osc_pidfile "$i")" "DevstackOpenSearch " >/dev/null \
        || die_service "opensearch-cluster" "$DEVSTACK_HOME/$(_osc_node_name "$i")/logs/$OSC_NAME.log:$DEVSTACK_HOME/$(_osc_node_name "$i")/logs/opensearch.out" \
             "node $i exited during startup"
    done
    ((SECONDS < deadline)) || die_service "opensearch-cluster" "$DEVSTACK_HOME/$(_osc_node_name 1)/logs/$OSC_NAME.log" \
      "the cluster did not form $OSC_SIZE nodes within 240s"
    sleep 2
  done
  status="$(_osc_health "$url")"
  service_line "opensearch-cluster" up "$(opensearch_cluster_urls)  ($OSC_SIZE nodes, $status)"
  curl -fsS -m 5 "$url/_cat/nodes?v&h=name,ip,http_address,node.role,cluster_manager,heap.max" >&2 || true
}

opensearch-cluster_down() {
  local i
  for ((i = OSC_SIZE; i >= 1; i--)); do
    _osc_node "$i" opensearch_down
  done
}

# opensearch_cluster_running: true if any node's pid file exists (started, maybe crashed).
opensearch_cluster_running() {
  local i
  for ((i = 1; i <= OSC_SIZE; i++)); do
    [[ -f "$(_osc_pidfile "$i")" ]] && return 0
  done
  return 1
}

opensearch-cluster_status() {
  local i url status up=0 rc=0
  for ((i = 1; i <= OSC_SIZE; i++)); do
    read_pidfile "$(_osc_pidfile "$i")" "DevstackOpenSearch " >/dev/null && up=$((up + 1))
  done
  if url="$(_osc_any_url)"; then
    status="$(_osc_health "$url")"
    service_line "opensearch-cluster" up "$(opensearch_cluster_urls)  ($up/$OSC_SIZE nodes running, health ${status:-unknown})"
    [[ "$up" == "$OSC_SIZE" ]] || rc=1
  else
    service_line "opensearch-cluster" down "$(opensearch_cluster_urls)  ($up/$OSC_SIZE nodes running)"
    rc=1
  fi
  return $rc
}

# opensearch_cluster_node ACTION N: stop (SIGTERM), kill (SIGKILL, no shutdown), start or status one node.
opensearch_cluster_node() {
  local action="$1" n="$2" pid
  _osc_check_node "$n"
  case "$action" in
    stop) _osc_node "$n" opensearch_down ;;
    kill)
      if pid="$(read_pidfile "$(_osc_pidfile "$n")" "DevstackOpenSearch ")"; then
        stop_pid "$(_osc_node_name "$n")" "$pid" 10 KILL
      fi
      rm -f "$(_osc_pidfile "$n")" "$DEVSTACK_HOME/$(_osc_node_name "$n")/running.env"
      service_line "$(_osc_node_name "$n")" down "killed"
      ;;
    start) _osc_node "$n" opensearch_up ;;
    status) _osc_node "$n" opensearch_status ;;
    *) echo "usage: devstack/node opensearch-cluster stop|kill|start|status N" >&2; exit 2 ;;
  esac
}
