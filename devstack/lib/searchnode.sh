# shellcheck shell=bash
# Embedded search nodes besides the default OpenSearch 2.19 (lib/opensearch.sh): one JVM per
# node, started from Maven Central jars and a small launcher compiled with javac at 'up' time.
#
#   flavor         service name    default port  jars (pom)                  launcher (devstack/...)         JDK
#   elasticsearch  elasticsearch   9201          maven/elasticsearch         elasticsearch/*.java            17+
#   opensearch3    opensearch3     9202          maven/opensearch3           opensearch3/*.java              21+
#
# Every flavor supports several instances, one per DEVSTACK_<FLAVOR>_NAME (default: the flavor),
# each in $DEVSTACK_HOME/<name>/{config,data,logs} with its own pid file. Settings given through
# the environment (DEVSTACK_<FLAVOR>_PORT, _TRANSPORT_PORT, _WRITE_QUEUE_SIZE, _WRITE_THREADS,
# _HEAP, _CLUSTER_NAME) are remembered in <dir>/node.env, so a later up/down/status with only the
# name reuses them; an env var set to the empty string resets that setting to its default.
#
# The functions take the flavor as their first argument and set SN_* globals for it; callers
# run one flavor at a time.

# _sn_init FLAVOR [NAME]: resolve the settings of one instance into SN_* variables.
_sn_init() {
  SN_FLAVOR="$1"
  local prefix
  case "$SN_FLAVOR" in
    elasticsearch)
      prefix=DEVSTACK_ELASTICSEARCH
      SN_PRODUCT=Elasticsearch
      SN_DEFAULT_PORT=9201
      SN_MAIN=DevstackElasticsearch
      SN_SOURCES=("$DEVSTACK_DIR"/elasticsearch/*.java)
      SN_CONFIG_FILE=elasticsearch.yml
      SN_SYSPROP=es
      SN_MIN_JAVA=17
      ;;
    opensearch3)
      prefix=DEVSTACK_OPENSEARCH3
      SN_PRODUCT=OpenSearch
      SN_DEFAULT_PORT=9202
      SN_MAIN=DevstackOpenSearch3
      SN_SOURCES=("$DEVSTACK_DIR"/opensearch3/*.java)
      SN_CONFIG_FILE=opensearch.yml
      SN_SYSPROP=opensearch
      SN_MIN_JAVA=21
      ;;
    *) echo "[devstack] unknown search node flavor '$SN_FLAVOR'" >&2; exit 2 ;;
  esac
  SN_PREFIX=$prefix
  local name_var="${prefix}_NAME"
  SN_NAME="${2:-${!name_var:-$SN_FLAVOR}}"
  if [[ ! "$SN_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || [[ "$SN_NAME" =~ ^(postgres|redis|kafka|lib|opensearch|connect)$ ]]; then
    echo "[devstack] invalid ${prefix}_NAME: '$SN_NAME'" >&2
    exit 2
  fi
  SN_POM="$DEVSTACK_DIR/maven/$SN_FLAVOR/pom.xml"
  SN_LIB="$DEVSTACK_HOME/lib/$SN_FLAVOR"
  SN_LAUNCHER_DIR="$DEVSTACK_HOME/lib/$SN_FLAVOR-launcher"
  SN_ROOT="$DEVSTACK_HOME/$SN_NAME"
  SN_PIDFILE="$SN_ROOT/node.pid"
  SN_OUT="$SN_ROOT/logs/node.out"            # JVM stdout/stderr (WARN and up, startup errors)
  SN_ENVFILE="$SN_ROOT/node.env"
  SN_LABEL="$SN_FLAVOR"
  [[ "$SN_NAME" == "$SN_FLAVOR" ]] || SN_LABEL="$SN_FLAVOR[$SN_NAME]"

  # env var (if set, even empty) > remembered value > default
  local saved_flavor="" saved_port="" saved_tport="" saved_queue="" saved_threads="" saved_heap="" saved_cluster=""
  if [[ -f "$SN_ENVFILE" ]]; then
    # shellcheck disable=SC1090
    source "$SN_ENVFILE"
    if [[ -n "$saved_flavor" && "$saved_flavor" != "$SN_FLAVOR" ]]; then
      echo "[devstack] $SN_ROOT belongs to a $saved_flavor node, not $SN_FLAVOR: pick another name" >&2
      exit 2
    fi
  fi
  _sn_setting() {  # _sn_setting SUFFIX SAVED DEFAULT
    local var="${SN_PREFIX}_$1" value
    if [[ -v $var ]]; then value="${!var}"; else value="$2"; fi
    echo "${value:-$3}"
  }
  SN_PORT="$(_sn_setting PORT "$saved_port" "$SN_DEFAULT_PORT")"
  SN_TRANSPORT_PORT="$(_sn_setting TRANSPORT_PORT "$saved_tport" "$((SN_PORT + 100))")"
  SN_WRITE_QUEUE="$(_sn_setting WRITE_QUEUE_SIZE "$saved_queue" "")"
  SN_WRITE_THREADS="$(_sn_setting WRITE_THREADS "$saved_threads" "")"
  SN_HEAP="$(_sn_setting HEAP "$saved_heap" 512m)"
  SN_CLUSTER="$(_sn_setting CLUSTER_NAME "$saved_cluster" "searchsync-$SN_NAME")"
  SN_LOG="$SN_ROOT/logs/$SN_CLUSTER.log"
}

_sn_save_settings() {
  mkdir -p "$SN_ROOT"
  cat >"$SN_ENVFILE" <<EOT
# settings of $SN_FLAVOR node '$SN_NAME' (devstack/lib/searchnode.sh)
saved_flavor='$SN_FLAVOR'
saved_port='$SN_PORT'
saved_tport='$SN_TRANSPORT_PORT'
saved_queue='$SN_WRITE_QUEUE'
saved_threads='$SN_WRITE_THREADS'
saved_heap='$SN_HEAP'
saved_cluster='$SN_CLUSTER'
EOT
}

_sn_url() { echo "http://127.0.0.1:$SN_PORT"; }

# _sn_java: set SN_JAVA_HOME to a JDK of at least SN_MIN_JAVA (with javac), or fail clearly.
_sn_java() {
  if ((SN_MIN_JAVA <= 17)); then
    ensure_java
    SN_JAVA_HOME="${JAVA_HOME:-}"
    SN_JAVA="$JAVA_BIN"; SN_JAVAC="$JAVAC_BIN"
    return 0
  fi
  SN_JAVA_HOME="$(find_jdk "$SN_MIN_JAVA")" \
    || die_service "$SN_LABEL" "" "$SN_PRODUCT needs a JDK $SN_MIN_JAVA or newer (java and javac); none found in DEVSTACK_JDK21_HOME, JAVA_HOME or /usr/lib/jvm/*. Install one (Debian 12's apt has only openjdk-17; e.g. Temurin 21 or 25) and set DEVSTACK_JDK21_HOME to it."
  SN_JAVA="$SN_JAVA_HOME/bin/java"; SN_JAVAC="$SN_JAVA_HOME/bin/javac"
}

_sn_install() {
  _sn_java
  ensure_packages curl
  mvn_copy_deps "$SN_POM" "$SN_LIB" || die_service "$SN_LABEL" "" "Maven could not resolve $SN_POM"
  local stamp="$SN_LAUNCHER_DIR/.devstack-src.sha256" want
  # contents, not paths: worktrees sharing a DEVSTACK_HOME must not recompile each other's copy
  want="$( (cat "${SN_SOURCES[@]}"; cat "$SN_LIB/.devstack-pom.sha256"; echo "$SN_JAVAC") | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" || ! -f "$SN_LAUNCHER_DIR/$SN_MAIN.class" ]]; then
    log "$SN_FLAVOR: compiling ${SN_SOURCES[*]} with $SN_JAVAC"
    rm -rf "$SN_LAUNCHER_DIR"
    mkdir -p "$SN_LAUNCHER_DIR"
    "$SN_JAVAC" -nowarn -d "$SN_LAUNCHER_DIR" -cp "$SN_LIB/*" "${SN_SOURCES[@]}" >&2 \
      || die_service "$SN_LABEL" "" "javac failed for ${SN_SOURCES[*]}"
    echo "$want" >"$stamp"
  fi
}

_sn_version() {
  curl -fsS -m 5 "$(_sn_url)/" 2>/dev/null | tr -d '\n' \
    | grep -o '"number"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'
}

_sn_healthy() {
  curl -fsS -m 15 -o /dev/null "$(_sn_url)/_cluster/health?wait_for_status=yellow&timeout=10s" 2>/dev/null
}

_sn_running() { read_pidfile "$SN_PIDFILE" "$SN_MAIN $SN_ROOT " >/dev/null; }

_sn_endpoint() {
  local extra=""
  [[ -n "$SN_WRITE_QUEUE" ]] && extra+=" write.queue_size=$SN_WRITE_QUEUE"
  [[ -n "$SN_WRITE_THREADS" ]] && extra+=" write.size=$SN_WRITE_THREADS"
  echo "$(_sn_url)  (transport 127.0.0.1:$SN_TRANSPORT_PORT, cluster $SN_CLUSTER${extra:+,$extra})"
}

_sn_write_config() {
  mkdir -p "$SN_ROOT/config" "$SN_ROOT/data" "$SN_ROOT/logs" "$SN_ROOT/tmp"
  {
    echo "# Written by devstack/lib/searchnode.sh on every 'devstack/up $SN_FLAVOR'. Edit there."
    echo "cluster.name: $SN_CLUSTER"
    echo "node.name: $SN_NAME"
    echo "path.data: $SN_ROOT/data"
    echo "path.logs: $SN_ROOT/logs"
    echo "network.host: 127.0.0.1"
    echo "http.port: $SN_PORT"
    echo "transport.port: $SN_TRANSPORT_PORT"
    echo "discovery.type: single-node"
    echo "bootstrap.memory_lock: false"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    echo "action.destructive_requires_name: false"
    [[ -n "$SN_WRITE_QUEUE" ]] && echo "thread_pool.write.queue_size: $SN_WRITE_QUEUE"
    [[ -n "$SN_WRITE_THREADS" ]] && echo "thread_pool.write.size: $SN_WRITE_THREADS"
    true
  } >"$SN_ROOT/config/$SN_CONFIG_FILE"
  local p="$SN_SYSPROP"
  cat >"$SN_ROOT/config/log4j2.properties" <<EOT
# Written by devstack/lib/searchnode.sh.
status = error

appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn

appender.rolling.type = RollingFile
appender.rolling.name = rolling
appender.rolling.fileName = \${sys:$p.logs.base_path}\${sys:file.separator}\${sys:$p.logs.cluster_name}.log
appender.rolling.filePattern = \${sys:$p.logs.base_path}\${sys:file.separator}\${sys:$p.logs.cluster_name}-%i.log
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

logger.deprecation.name = org.$([[ $p == es ]] && echo elasticsearch || echo opensearch).deprecation
logger.deprecation.level = error
EOT
}

# searchnode_up FLAVOR
searchnode_up() {
  _sn_init "$1"
  _sn_install
  if _sn_running && _sn_healthy; then
    local running=""
    [[ -f "$SN_ROOT/running.env" ]] && running="$(cat "$SN_ROOT/running.env")"
    if [[ -n "$running" && "$running" != "$SN_PORT $SN_TRANSPORT_PORT $SN_WRITE_QUEUE $SN_WRITE_THREADS $SN_HEAP $SN_CLUSTER" ]]; then
      warn "$SN_LABEL is already running with other settings ($running); run devstack/down $SN_FLAVOR first to apply new ones"
    fi
    service_line "$SN_LABEL" up "$(_sn_endpoint)  $SN_PRODUCT $(_sn_version)"
    return 0
  fi
  if ! _sn_running; then
    local p
    for p in "$SN_PORT" "$SN_TRANSPORT_PORT"; do
      if port_open "$p"; then
        die_service "$SN_LABEL" "$SN_LOG" "port 127.0.0.1:$p is already taken by another process (set ${SN_PREFIX}_PORT / ${SN_PREFIX}_TRANSPORT_PORT)"
      fi
    done
    _sn_save_settings
    _sn_write_config
    echo "$SN_PORT $SN_TRANSPORT_PORT $SN_WRITE_QUEUE $SN_WRITE_THREADS $SN_HEAP $SN_CLUSTER" >"$SN_ROOT/running.env"
    local jvm_extra=(-Djava.locale.providers=SPI,COMPAT)
    if ((SN_MIN_JAVA >= 21)); then
      # JDK 21+: COMPAT is gone (ignored with a warning); Lucene 10 uses restricted methods.
      jvm_extra=(-Djava.locale.providers=SPI,CLDR --enable-native-access=ALL-UNNAMED)
    fi
    log "$SN_LABEL: starting on $(_sn_url) with $SN_JAVA"
    spawn_detached "$SN_PIDFILE" "$SN_OUT" "$SN_JAVA" \
      "-Xms$SN_HEAP" "-Xmx$SN_HEAP" \
      -XX:+UseG1GC -XX:G1ReservePercent=25 -XX:InitiatingHeapOccupancyPercent=30 \
      -XX:-OmitStackTraceInFastThrow -XX:+HeapDumpOnOutOfMemoryError \
      -XX:HeapDumpPath="$SN_ROOT/logs" -XX:ErrorFile="$SN_ROOT/logs/hs_err_pid%p.log" \
      -Dfile.encoding=UTF-8 -Djava.awt.headless=true -Djna.nosys=true \
      -Djava.io.tmpdir="$SN_ROOT/tmp" \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
      -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Dio.netty.allocator.numDirectArenas=0 \
      -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Dlog4j2.formatMsgNoLookups=true \
      "${jvm_extra[@]}" \
      "-D$SN_SYSPROP.path.home=$SN_ROOT" "-D$SN_SYSPROP.path.conf=$SN_ROOT/config" \
      -cp "$SN_LAUNCHER_DIR:$SN_LIB/*" "$SN_MAIN" "$SN_ROOT" \
      || die_service "$SN_LABEL" "$SN_OUT" "could not spawn the $SN_PRODUCT JVM"
  fi
  local deadline=$((SECONDS + 180))
  until _sn_healthy; do
    _sn_running || die_service "$SN_LABEL" "$SN_LOG:$SN_OUT" "the $SN_PRODUCT JVM exited during startup"
    ((SECONDS < deadline)) || die_service "$SN_LABEL" "$SN_LOG:$SN_OUT" "cluster health not yellow on $(_sn_url) after 180s"
    sleep 1
  done
  service_line "$SN_LABEL" up "$(_sn_endpoint)  $SN_PRODUCT $(_sn_version)"
}

# searchnode_down FLAVOR [NAME]
searchnode_down() {
  _sn_init "$@"
  local pid
  if pid="$(read_pidfile "$SN_PIDFILE" "$SN_MAIN $SN_ROOT ")"; then
    stop_pid "$SN_LABEL" "$pid" 60 TERM
  fi
  rm -f "$SN_PIDFILE" "$SN_ROOT/running.env"
  service_line "$SN_LABEL" down ""
}

# searchnode_status FLAVOR [NAME]
searchnode_status() {
  _sn_init "$@"
  if _sn_running && _sn_healthy; then
    service_line "$SN_LABEL" up "$SN_PRODUCT $(_sn_version)  $(_sn_endpoint)"
  else
    service_line "$SN_LABEL" down "$(_sn_url)  log: $SN_LOG"
    return 1
  fi
}

# searchnode_instances [running]: "FLAVOR NAME" of every instance ever started here
# (with 'running': only those whose pid file names a live process).
searchnode_instances() {
  local envfile saved_flavor name
  for envfile in "$DEVSTACK_HOME"/*/node.env; do
    [[ -f "$envfile" ]] || continue
    saved_flavor="$(sed -n "s/^saved_flavor='\(.*\)'$/\1/p" "$envfile")"
    [[ -n "$saved_flavor" ]] || continue
    name="$(basename "$(dirname "$envfile")")"
    if [[ "${1:-}" == running ]]; then
      [[ -f "$(dirname "$envfile")/node.pid" ]] || continue
    fi
    echo "$saved_flavor $name"
  done
}

elasticsearch_up()     { searchnode_up elasticsearch; }
elasticsearch_down()   { searchnode_down elasticsearch; }
elasticsearch_status() { searchnode_status elasticsearch; }
opensearch3_up()       { searchnode_up opensearch3; }
opensearch3_down()     { searchnode_down opensearch3; }
opensearch3_status()   { searchnode_status opensearch3; }
