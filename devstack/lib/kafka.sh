# shellcheck shell=bash
# Apache Kafka 4.x, KRaft combined broker+controller, from Maven Central jars on JDK 17.
#
# Several independent brokers are supported, one per DEVSTACK_KAFKA_NAME (default "kafka"),
# each with its own dir $DEVSTACK_HOME/<name>/{config,data,logs}, cluster id and ports; the
# jars in $DEVSTACK_HOME/lib/kafka are shared. Settings given through the environment are
# remembered in <dir>/kafka-instance.env, so a later 'up'/'down'/'status' with only
# DEVSTACK_KAFKA_NAME set reuses them; an env var set to the empty string resets it.

KAFKA_NAME="${DEVSTACK_KAFKA_NAME:-kafka}"
if [[ ! "$KAFKA_NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || [[ "$KAFKA_NAME" =~ ^(postgres|redis|opensearch|connect|lib|app|static)$ ]] \
   || [[ -f "$DEVSTACK_HOME/$KAFKA_NAME/instance.env" ]]; then
  # (instance.env marks an OpenSearch instance's directory)
  echo "[devstack] invalid DEVSTACK_KAFKA_NAME: '$KAFKA_NAME'" >&2
  exit 2
fi
KAFKA_LIB="$DEVSTACK_HOME/lib/kafka"
KAFKA_ROOT="$DEVSTACK_HOME/$KAFKA_NAME"
KAFKA_INSTANCE_ENV="$KAFKA_ROOT/kafka-instance.env"

# Resolve settings: env var (if set, even empty) > remembered value > default.
_kafka_load_settings() {
  local saved_port="" saved_cport="" saved_heap=""
  if [[ -f "$KAFKA_INSTANCE_ENV" ]]; then
    # shellcheck disable=SC1090
    source "$KAFKA_INSTANCE_ENV"
  fi
  KAFKA_PORT="${DEVSTACK_KAFKA_PORT-$saved_port}";                  KAFKA_PORT="${KAFKA_PORT:-9092}"
  KAFKA_CONTROLLER_PORT="${DEVSTACK_KAFKA_CONTROLLER_PORT-$saved_cport}"
  KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
  KAFKA_HEAP_OPTS="${DEVSTACK_KAFKA_HEAP_OPTS-$saved_heap}";        KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms512m -Xmx1g}"
}
_kafka_load_settings

_kafka_save_settings() {
  mkdir -p "$KAFKA_ROOT"
  cat >"$KAFKA_INSTANCE_ENV" <<EOF
# settings of Kafka instance '$KAFKA_NAME' (devstack/lib/kafka.sh)
saved_port='$KAFKA_PORT'
saved_cport='$KAFKA_CONTROLLER_PORT'
saved_heap='$KAFKA_HEAP_OPTS'
EOF
}

_kafka_label() { if [[ "$KAFKA_NAME" == kafka ]]; then echo kafka; else echo "kafka[$KAFKA_NAME]"; fi; }

KAFKA_CONFIG_DIR="$KAFKA_ROOT/config"
KAFKA_DATA="$KAFKA_ROOT/data"
KAFKA_LOGS="$KAFKA_ROOT/logs"
KAFKA_LOG="$KAFKA_LOGS/server.log"      # log4j2 (everything at INFO)
KAFKA_OUT="$KAFKA_LOGS/kafka.out"       # the JVM's stdout/stderr (WARN and up, JVM errors)
KAFKA_PIDFILE="$KAFKA_ROOT/kafka.pid"
KAFKA_POM="$DEVSTACK_DIR/maven/kafka/pom.xml"

kafka_install() {
  ensure_java
  mvn_copy_deps "$KAFKA_POM" "$KAFKA_LIB" || die_service "$(_kafka_label)" "" "Maven could not resolve $KAFKA_POM"
  mkdir -p "$KAFKA_CONFIG_DIR" "$KAFKA_DATA" "$KAFKA_LOGS"
  _kafka_write_tools_log4j
}

_kafka_version() {
  local j
  j="$(ls "$KAFKA_LIB"/kafka_2.13-*.jar 2>/dev/null | grep -v -e '-test' | head -n1)"
  j="${j##*/kafka_2.13-}"
  echo "${j%.jar}"
}

_kafka_write_tools_log4j() {
  cat >"$KAFKA_CONFIG_DIR/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by devstack/lib/kafka.sh: logging for devstack/kafka-cli and health checks. -->
<Configuration status="warn">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="STDERR"/></Root>
  </Loggers>
</Configuration>
EOF
}

_kafka_write_config() {
  cat >"$KAFKA_CONFIG_DIR/server.properties" <<EOF
# Written by devstack/lib/kafka.sh on every 'devstack/up kafka'. Edit there.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
log.dirs=$KAFKA_DATA
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=1073741824
num.network.threads=3
num.io.threads=4
EOF
  cat >"$KAFKA_CONFIG_DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by devstack/lib/kafka.sh on every 'devstack/up kafka'. Edit there. -->
<Configuration status="warn">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <ThresholdFilter level="WARN" onMatch="ACCEPT" onMismatch="DENY"/>
    </Console>
    <RollingFile name="SERVER" fileName="$KAFKA_LOGS/server.log"
                 filePattern="$KAFKA_LOGS/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="5"/>
    </RollingFile>
    <RollingFile name="STATE" fileName="$KAFKA_LOGS/state-change.log"
                 filePattern="$KAFKA_LOGS/state-change.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO">
      <AppenderRef ref="SERVER"/>
      <AppenderRef ref="STDOUT"/>
    </Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="INFO"/>
    <Logger name="state.change.logger" level="INFO" additivity="false">
      <AppenderRef ref="STATE"/>
    </Logger>
  </Loggers>
</Configuration>
EOF
  cat >"$KAFKA_CONFIG_DIR/health-admin.properties" <<'EOF'
request.timeout.ms=5000
default.api.timeout.ms=10000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=5000
EOF
}

# _kafka_java CLASS ARGS...: run a Kafka class on the devstack classpath (quiet logging).
_kafka_java() {
  "$JAVA_BIN" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_CONFIG_DIR/tools-log4j2.xml" \
    -cp "$KAFKA_LIB/*" "$@"
}

_kafka_healthy() {
  port_open "$KAFKA_PORT" || return 1
  timeout 40 "$JAVA_BIN" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_CONFIG_DIR/tools-log4j2.xml" \
    -cp "$KAFKA_LIB/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$KAFKA_CONFIG_DIR/health-admin.properties" --list >/dev/null 2>&1
}

_kafka_endpoint() { echo "127.0.0.1:$KAFKA_PORT  (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, bootstrap.servers=127.0.0.1:$KAFKA_PORT)"; }

_kafka_format() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local cid
  if [[ -s "$KAFKA_ROOT/cluster.id" ]]; then
    cid="$(cat "$KAFKA_ROOT/cluster.id")"
  else
    cid="$(_kafka_java kafka.tools.StorageTool random-uuid 2>>"$KAFKA_OUT" | tail -n1)"
    [[ -n "$cid" ]] || die_service "$(_kafka_label)" "$KAFKA_OUT" "StorageTool random-uuid failed"
    echo "$cid" >"$KAFKA_ROOT/cluster.id"
  fi
  log "$(_kafka_label): formatting storage in $KAFKA_DATA (cluster id $cid, --standalone)"
  if ! _kafka_java kafka.tools.StorageTool format -t "$cid" \
        -c "$KAFKA_CONFIG_DIR/server.properties" --standalone >>"$KAFKA_OUT" 2>&1; then
    die_service "$(_kafka_label)" "$KAFKA_OUT" "kafka storage format failed"
  fi
}


# The shared broker keeps C2 whoever starts it (a `make up` and its benchmarks use it afterwards);
# a drill's own broker (DEVSTACK_KAFKA_NAME) boots quick under make test.
_kafka_quick_start_opts() {
  if [[ -n "${DEVSTACK_KAFKA_NAME:-}" ]]; then jvm_quick_start_opts; fi
}

kafka_up() {
  kafka_install
  if read_pidfile "$KAFKA_PIDFILE" "$KAFKA_CONFIG_DIR/server.properties" >/dev/null && _kafka_healthy; then
    service_line "$(_kafka_label)" up "$(_kafka_endpoint)"
    return 0
  fi
  _kafka_write_config
  if ! read_pidfile "$KAFKA_PIDFILE" "$KAFKA_CONFIG_DIR/server.properties" >/dev/null; then
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
      if port_open "$p"; then
        die_service "$(_kafka_label)" "$KAFKA_LOG" "port 127.0.0.1:$p is already taken by another process (set DEVSTACK_KAFKA_PORT / DEVSTACK_KAFKA_CONTROLLER_PORT)"
      fi
    done
    _kafka_save_settings
    _kafka_format
    log "$(_kafka_label): starting on 127.0.0.1:$KAFKA_PORT"
    # shellcheck disable=SC2086
    spawn_detached "$KAFKA_PIDFILE" "$KAFKA_OUT" "$JAVA_BIN" $KAFKA_HEAP_OPTS $(_kafka_quick_start_opts) \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dkafka.logs.dir="$KAFKA_LOGS" \
      -Dlog4j2.configurationFile="$KAFKA_CONFIG_DIR/log4j2.xml" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONFIG_DIR/server.properties" \
      || die_service "$(_kafka_label)" "$KAFKA_OUT" "could not spawn the Kafka JVM"
  fi
  local deadline=$((SECONDS + 120))
  until _kafka_healthy; do
    read_pidfile "$KAFKA_PIDFILE" "$KAFKA_CONFIG_DIR/server.properties" >/dev/null \
      || die_service "$(_kafka_label)" "$KAFKA_LOG:$KAFKA_OUT" "the Kafka JVM exited during startup"
    ((SECONDS < deadline)) \
      || die_service "$(_kafka_label)" "$KAFKA_LOG:$KAFKA_OUT" "no metadata answer from 127.0.0.1:$KAFKA_PORT after 120s"
    sleep 1
  done
  service_line "$(_kafka_label)" up "$(_kafka_endpoint)"
}

kafka_down() {
  local pid
  if pid="$(read_pidfile "$KAFKA_PIDFILE" "$KAFKA_CONFIG_DIR/server.properties")"; then
    stop_pid "$(_kafka_label)" "$pid" 60 TERM
  fi
  rm -f "$KAFKA_PIDFILE"
  service_line "$(_kafka_label)" down ""
}

kafka_status() {
  if read_pidfile "$KAFKA_PIDFILE" "$KAFKA_CONFIG_DIR/server.properties" >/dev/null && [[ -d "$KAFKA_LIB" ]] && _kafka_healthy; then
    service_line "$(_kafka_label)" up "Kafka $(_kafka_version)  $(_kafka_endpoint)"
  else
    service_line "$(_kafka_label)" down "127.0.0.1:$KAFKA_PORT  log: $KAFKA_LOG"
    return 1
  fi
}
