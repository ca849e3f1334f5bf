# shellcheck shell=bash
# PostgreSQL (Debian package) running its own cluster under $DEVSTACK_HOME/postgres.

PG_PORT="${DEVSTACK_PG_PORT:-5432}"
PG_ROOT="$DEVSTACK_HOME/postgres"
PG_DATA="$PG_ROOT/data"
PG_RUN="$PG_ROOT/run"          # unix socket directory (not /var/run/postgresql)
PG_LOG="$PG_ROOT/postgres.log"
PG_PIDFILE="$PG_ROOT/postgres.pid"

_pg_bin() {
  local major d
  if [[ -f "$PG_DATA/PG_VERSION" ]]; then
    major="$(cat "$PG_DATA/PG_VERSION")"
    if [[ -x "/usr/lib/postgresql/$major/bin/postgres" ]]; then
      echo "/usr/lib/postgresql/$major/bin"; return 0
    fi
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$d" ]] || return 1
  echo "$d"
}

# Run a command as the postgres OS user (postgres refuses to run as root).
if [[ $(id -u) -eq 0 ]]; then
  PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups
         env -i PATH=/usr/bin:/bin HOME=/var/lib/postgresql LANG=C.UTF-8 LC_ALL=C.UTF-8)
else
  PG_AS=(env)
fi
_as_pg() { "${PG_AS[@]}" "$@"; }

_pg_pid() {
  local pid
  [[ -f "$PG_DATA/postmaster.pid" ]] || return 1
  pid="$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9')"
  pid_alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$PG_DATA" || return 1
  fi
  echo "$pid"
}

_pg_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }

_pg_app_query() {
  PGPASSWORD=searchsync PGCONNECT_TIMEOUT=3 "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" \
    -U searchsync -d searchsync -tAc "$1" 2>/dev/null
}

_pg_healthy() {
  _pg_ready && [[ "$(_pg_app_query 'SELECT 1')" == "1" ]]
}

_pg_write_config() {
  cat >"$PG_DATA/devstack.conf" <<EOF
# Written by devstack/lib/postgres.sh on every 'devstack/up postgres'. Edit there.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 200
password_encryption = 'scram-sha-256'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
# durability kept at the defaults on purpose (fsync/synchronous_commit/full_page_writes on)
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
  cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by devstack/lib/postgres.sh. TYPE DATABASE USER ADDRESS METHOD
local   all             postgres                                peer
local   all             all                                     scram-sha-256
local   replication     all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
EOF
  chown postgres:postgres "$PG_DATA/devstack.conf" "$PG_DATA/pg_hba.conf" 2>/dev/null || true
  chmod 600 "$PG_DATA/devstack.conf" "$PG_DATA/pg_hba.conf"
}

_pg_bootstrap_sql() {
  _as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'searchsync') THEN
    CREATE ROLE searchsync;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'searchsync_cdc') THEN
    CREATE ROLE searchsync_cdc;
  END IF;
END
$$;
ALTER ROLE searchsync WITH LOGIN CREATEDB REPLICATION PASSWORD 'searchsync';
ALTER ROLE searchsync_cdc WITH LOGIN REPLICATION PASSWORD 'searchsync_cdc';
SELECT 'CREATE DATABASE searchsync OWNER searchsync ENCODING ''UTF8'''
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'searchsync')\gexec
SQL
}

_pg_endpoint() {
  echo "127.0.0.1:$PG_PORT  postgresql://searchsync:searchsync@127.0.0.1:$PG_PORT/searchsync"
}

postgres_up() {
  ensure_packages postgresql
  PGBIN="$(_pg_bin)" || die_service postgres "" "no /usr/lib/postgresql/*/bin after installing 'postgresql'"
  mkdir -p "$PG_ROOT" "$PG_RUN"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$PG_ROOT" "$PG_RUN"
    # Only while the server is stopped: on a running one, files of a database being dropped
    # vanish under chown -R, which then fails 'up' for a server that was fine.
    if [[ -d "$PG_DATA" ]] && ! _pg_pid >/dev/null; then
      chown -R postgres:postgres "$PG_DATA"
    fi
    if ! _as_pg test -w "$PG_ROOT"; then
      die_service postgres "" "OS user 'postgres' cannot write $PG_ROOT (a parent directory is not traversable?); set DEVSTACK_HOME elsewhere"
    fi
  fi

  if _pg_pid >/dev/null && _pg_healthy; then
    service_line postgres up "$(_pg_endpoint)"
    return 0
  fi

  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    log "postgres: initdb in $PG_DATA"
    rm -rf "$PG_DATA"
    mkdir -p "$PG_DATA"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
    if ! _as_pg "$PGBIN/initdb" -D "$PG_DATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
          --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1; then
      die_service postgres "$PG_LOG" "initdb failed"
    fi
    echo "include_if_exists = 'devstack.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  _pg_write_config

  if ! _pg_pid >/dev/null; then
    if port_open "$PG_PORT"; then
      die_service postgres "$PG_LOG" "port 127.0.0.1:$PG_PORT is already taken by another process (system cluster? set DEVSTACK_PG_PORT)"
    fi
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    spawn_detached "$PG_PIDFILE" "$PG_LOG" "${PG_AS[@]}" "$PGBIN/postgres" -D "$PG_DATA" \
      || die_service postgres "$PG_LOG" "could not spawn postgres"
  fi

  local deadline=$((SECONDS + 90))
  until _pg_ready; do
    if ((SECONDS > deadline)); then
      die_service postgres "$PG_LOG" "not accepting connections on 127.0.0.1:$PG_PORT after 90s"
    fi
    if ! _pg_pid >/dev/null && ! read_pidfile "$PG_PIDFILE" >/dev/null; then
      sleep 1
      _pg_pid >/dev/null || die_service postgres "$PG_LOG" "postgres exited during startup"
    fi
    sleep 0.5
  done
  _pg_bootstrap_sql >>"$PG_LOG" 2>&1 || die_service postgres "$PG_LOG" "creating roles/database failed"
  _pg_healthy || die_service postgres "$PG_LOG" "SELECT 1 as searchsync failed"
  service_line postgres up "$(_pg_endpoint)"
}

postgres_down() {
  local pid
  if pid="$(_pg_pid)"; then
    # SIGINT = PostgreSQL's "fast" shutdown (SIGTERM would wait for every client to leave).
    stop_pid postgres "$pid" 60 INT
  fi
  rm -f "$PG_PIDFILE"
  service_line postgres down ""
}

postgres_status() {
  PGBIN="$(_pg_bin)" || { service_line postgres down "(postgresql not installed)"; return 1; }
  if _pg_pid >/dev/null && _pg_healthy; then
    service_line postgres up "PostgreSQL $(_pg_app_query 'SHOW server_version')  $(_pg_endpoint)"
  else
    service_line postgres down "127.0.0.1:$PG_PORT  log: $PG_LOG"
    return 1
  fi
}
