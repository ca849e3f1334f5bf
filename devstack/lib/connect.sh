# shellcheck shell=bash
# Kafka Connect (standalone worker) with the Debezium PostgreSQL connector, from Maven
# Central jars on JDK 17. No connector is configured here: the application creates its
# connectors through the REST API. Needs kafka.sh and postgres.sh sourced first.

CONNECT_PORT="${DEVSTACK_CONNECT_PORT:-8083}"
CONNECT_HEAP_OPTS="${DEVSTACK_CONNECT_HEAP_OPTS:--Xms512m -Xmx512m}"
CONNECT_LIB="$DEVSTACK_HOME/lib/connect"
CONNECT_ROOT="$DEVSTACK_HOME/connect"
CONNECT_CONFIG_DIR="$CONNECT_ROOT/config"
CONNECT_LOGS="$CONNECT_ROOT/logs"
CONNECT_LOG="$CONNECT_LOGS/connect.log"     # log4j2 (everything at INFO)
CONNECT_OUT="$CONNECT_LOGS/connect.out"     # the JVM's stdout/stderr (WARN and up, JVM errors)
CONNECT_OFFSETS="$CONNECT_ROOT/offsets.dat"
CONNECT_PIDFILE="$CONNECT_ROOT/connect.pid"
CONNECT_POM="$DEVSTACK_DIR/maven/connect/pom.xml"
CONNECT_PG_CLASS="io.debezium.connector.postgresql.PostgresConnector"

connect_install() {
  ensure_java
  ensure_packages curl
  mvn_copy_deps "$CONNECT_POM" "$CONNECT_LIB" || die_service connect "" "Maven could not resolve $CONNECT_POM"
  mkdir -p "$CONNECT_CONFIG_DIR" "$CONNECT_LOGS"
}

_connect_url() { echo "http://127.0.0.1:$CONNECT_PORT"; }

# JSON field "version" of GET / (the Kafka Connect version).
_connect_version() {
  curl -fsS -m 5 "$(_connect_url)/" 2>/dev/null | tr -d '\n' \
    | grep -o '"version"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'
}

# Version of the Debezium PostgresConnector plugin from GET /connector-plugins (empty if
# the plugin is not listed).
_connect_pg_plugin_version() {
  curl -fsS -m 5 "$(_connect_url)/connector-plugins" 2>/dev/null | tr -d '\n' \
    | grep -o "{[^}]*\"$CONNECT_PG_CLASS\"[^}]*}" \
    | grep -o '"version"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'
}

_connect_healthy() {
  curl -fsS -m 5 -o /dev/null "$(_connect_url)/" 2>/dev/null && [[ -n "$(_connect_pg_plugin_version)" ]]
}

_connect_endpoint() { echo "$(_connect_url)  (REST; bootstrap.servers=127.0.0.1:$KAFKA_PORT, offsets $CONNECT_OFFSETS)"; }

_connect_write_config() {
  cat >"$CONNECT_CONFIG_DIR/worker.properties" <<EOF
# Written by devstack/lib/connect.sh on every 'devstack/up connect'. Edit there.
# Standalone worker: connectors are created through the REST API (they are kept in memory
# only, so they must be created again after a restart; their source offsets are kept in
# offset.storage.file.filename and are picked up again by a connector of the same name).
bootstrap.servers=127.0.0.1:$KAFKA_PORT
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
offset.storage.file.filename=$CONNECT_OFFSETS
offset.flush.interval.ms=1000
# Connectors set producer.override.max.request.size to the topics' max.message.bytes
# (indexing/control/connectors.py) and create missing topics with that limit: both need these.
connector.client.config.override.policy=All
topic.creation.enable=true
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
# The Debezium jars are on the worker's classpath (devstack/maven/connect/pom.xml), not in
# a plugin.path directory; the plugins are found through their ServiceLoader manifests.
plugin.discovery=service_load
EOF
  cat >"$CONNECT_CONFIG_DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by devstack/lib/connect.sh on every 'devstack/up connect'. Edit there. -->
<Configuration status="warn">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %X{connector.context}%m (%c)%n"/>
      <ThresholdFilter level="WARN" onMatch="ACCEPT" onMismatch="DENY"/>
    </Console>
    <RollingFile name="CONNECT" fileName="$CONNECT_LOG"
                 filePattern="$CONNECT_LOG.%i">
      <PatternLayout pattern="[%d] %p %X{connector.context}%m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="5"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO">
      <AppenderRef ref="CONNECT"/>
      <AppenderRef ref="STDOUT"/>
    </Root>
    <Logger name="org.reflections" level="ERROR"/>
    <Logger name="org.eclipse.jetty" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

# _connect_require_deps: Connect needs the broker (and, for the Debezium connectors, the
# database); both must already be up.
_connect_require_deps() {
  if ! _kafka_healthy; then
    die_service connect "" "kafka is not up on 127.0.0.1:$KAFKA_PORT: run 'devstack/up kafka' (or 'devstack/up postgres kafka connect') first"
  fi
  # shellcheck disable=SC2034 # PGBIN is read by _pg_healthy (postgres.sh)
  if ! PGBIN="$(_pg_bin)" || ! _pg_healthy; then
    die_service connect "" "postgres is not up on 127.0.0.1:$PG_PORT: run 'devstack/up postgres' (or 'devstack/up postgres kafka connect') first"
  fi
}

connect_up() {
  connect_install
  if read_pidfile "$CONNECT_PIDFILE" "$CONNECT_CONFIG_DIR/worker.properties" >/dev/null && _connect_healthy; then
    service_line connect up "$(_connect_endpoint)"
    return 0
  fi
  _connect_require_deps
  if ! read_pidfile "$CONNECT_PIDFILE" "$CONNECT_CONFIG_DIR/worker.properties" >/dev/null; then
    if port_open "$CONNECT_PORT"; then
      die_service connect "$CONNECT_LOG" "port 127.0.0.1:$CONNECT_PORT is already taken by another process (set DEVSTACK_CONNECT_PORT)"
    fi
    _connect_write_config
    log "connect: starting on $(_connect_url)"
    # shellcheck disable=SC2086
    spawn_detached "$CONNECT_PIDFILE" "$CONNECT_OUT" "$JAVA_BIN" $CONNECT_HEAP_OPTS $(jvm_quick_start_opts) \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dkafka.logs.dir="$CONNECT_LOGS" \
      -Dlog4j2.configurationFile="$CONNECT_CONFIG_DIR/log4j2.xml" \
      -cp "$CONNECT_LIB/*" org.apache.kafka.connect.cli.ConnectStandalone \
      "$CONNECT_CONFIG_DIR/worker.properties" \
      || die_service connect "$CONNECT_OUT" "could not spawn the Kafka Connect JVM"
  fi
  local deadline=$((SECONDS + 120))
  until _connect_healthy; do
    read_pidfile "$CONNECT_PIDFILE" "$CONNECT_CONFIG_DIR/worker.properties" >/dev/null \
      || die_service connect "$CONNECT_LOG:$CONNECT_OUT" "the Kafka Connect JVM exited during startup"
    ((SECONDS < deadline)) \
      || die_service connect "$CONNECT_LOG:$CONNECT_OUT" "no REST answer listing $CONNECT_PG_CLASS on $(_connect_url) after 120s"
    sleep 1
  done
  service_line connect up "$(_connect_endpoint)  Kafka Connect $(_connect_version), Debezium PostgresConnector $(_connect_pg_plugin_version)"
}

connect_down() {
  local pid
  if pid="$(read_pidfile "$CONNECT_PIDFILE" "$CONNECT_CONFIG_DIR/worker.properties")"; then
    # SIGTERM: the worker stops its connectors and flushes their offsets to offsets.dat.
    stop_pid connect "$pid" 60 TERM
  fi
  rm -f "$CONNECT_PIDFILE"
  service_line connect down ""
}

# connect_running: true if the worker process of this DEVSTACK_HOME is alive.
connect_running() { read_pidfile "$CONNECT_PIDFILE" "$CONNECT_CONFIG_DIR/worker.properties" >/dev/null; }

connect_status() {
  local plugin
  if connect_running && plugin="$(_connect_pg_plugin_version)" && [[ -n "$plugin" ]]; then
    service_line connect up "Kafka Connect $(_connect_version), Debezium PostgresConnector $plugin  $(_connect_endpoint)"
  else
    service_line connect down "$(_connect_url)  log: $CONNECT_LOG"
    return 1
  fi
}
