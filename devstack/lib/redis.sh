# shellcheck shell=bash
# Redis (Debian's redis-server) with its own config/data under $DEVSTACK_HOME/redis.

REDIS_PORT="${DEVSTACK_REDIS_PORT:-6379}"
REDIS_ROOT="$DEVSTACK_HOME/redis"
REDIS_CONF="$REDIS_ROOT/redis.conf"
REDIS_LOG="$REDIS_ROOT/redis.log"
REDIS_PIDFILE="$REDIS_ROOT/redis.pid"

_redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
_redis_healthy() { [[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]; }
_redis_version() {
  timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null \
    | sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p'
}
_redis_endpoint() { echo "127.0.0.1:$REDIS_PORT  redis://127.0.0.1:$REDIS_PORT/0"; }

_redis_write_config() {
  cat >"$REDIS_CONF" <<EOF
# Written by devstack/lib/redis.sh on every 'devstack/up redis'. Edit there.
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
daemonize no
pidfile $REDIS_PIDFILE
logfile ""
loglevel notice
dir $REDIS_ROOT
dbfilename dump.rdb
appendonly yes
appendfilename "appendonly.aof"
appendfsync everysec
save 3600 1 300 100 60 10000
databases 16
EOF
}

redis_up() {
  ensure_packages redis-server redis-tools
  mkdir -p "$REDIS_ROOT"
  local pid
  if pid="$(read_pidfile "$REDIS_PIDFILE" redis-server)" && _redis_healthy; then
    service_line redis up "$(_redis_endpoint)"
    return 0
  fi
  _redis_write_config
  if ! pid="$(read_pidfile "$REDIS_PIDFILE" redis-server)"; then
    if port_open "$REDIS_PORT"; then
      die_service redis "$REDIS_LOG" "port 127.0.0.1:$REDIS_PORT is already taken by another process (set DEVSTACK_REDIS_PORT)"
    fi
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    spawn_detached "$REDIS_PIDFILE" "$REDIS_LOG" redis-server "$REDIS_CONF" \
      || die_service redis "$REDIS_LOG" "could not spawn redis-server"
  fi
  local deadline=$((SECONDS + 30))
  until _redis_healthy; do
    read_pidfile "$REDIS_PIDFILE" redis-server >/dev/null || die_service redis "$REDIS_LOG" "redis-server exited during startup"
    ((SECONDS < deadline)) || die_service redis "$REDIS_LOG" "no PONG on 127.0.0.1:$REDIS_PORT after 30s"
    sleep 0.3
  done
  service_line redis up "$(_redis_endpoint)"
}

redis_down() {
  local pid
  if pid="$(read_pidfile "$REDIS_PIDFILE" redis-server)"; then
    stop_pid redis "$pid" 30 TERM
  fi
  rm -f "$REDIS_PIDFILE"
  service_line redis down ""
}

redis_status() {
  if read_pidfile "$REDIS_PIDFILE" redis-server >/dev/null && _redis_healthy; then
    service_line redis up "Redis $(_redis_version)  $(_redis_endpoint)"
  else
    service_line redis down "127.0.0.1:$REDIS_PORT  log: $REDIS_LOG"
    return 1
  fi
}
