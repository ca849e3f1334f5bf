# shellcheck shell=bash
# Shared helpers for devstack/up, devstack/down, devstack/status.
# Sourced (not executed); callers already run with `set -euo pipefail`.

DEVSTACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$DEVSTACK_DIR/.." && pwd)"
export DEVSTACK_HOME="${DEVSTACK_HOME:-$REPO_ROOT/.devstack}"
mkdir -p "$DEVSTACK_HOME"
DEVSTACK_HOME="$(cd "$DEVSTACK_HOME" && pwd)"

DEVSTACK_ALL_SERVICES=(postgres redis kafka opensearch)
# Kafka Connect + Debezium is opt-in: 'devstack/up connect', or DEVSTACK_WITH_CONNECT=1 to
# make it part of the default list.
[[ "${DEVSTACK_WITH_CONNECT:-0}" != 1 ]] || DEVSTACK_ALL_SERVICES+=(connect)

if [[ -z "${JAVA_HOME:-}" ]]; then
  if [[ -d /usr/lib/jvm/java-17-openjdk-amd64 ]]; then
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
  fi
fi
export JAVA_HOME
JAVA_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}java"
JAVAC_BIN="${JAVA_HOME:+$JAVA_HOME/bin/}javac"

log()  { printf '[devstack] %s\n' "$*" >&2; }
warn() { printf '[devstack] WARNING: %s\n' "$*" >&2; }

# die_service SERVICE LOGFILE[:LOGFILE...] MESSAGE: report a failed service, print the
# path and the last 30 lines of its log(s), and exit 1.
die_service() {
  local svc="$1" logs="$2"; shift 2
  local logfile
  {
    printf '[devstack] FAILED: %s: %s\n' "$svc" "$*"
    local IFS=:
    for logfile in $logs; do
      [[ -n "$logfile" ]] || continue
      printf '[devstack] %s log: %s\n' "$svc" "$logfile"
      if [[ -s "$logfile" ]]; then
        printf -- '----- last 30 lines of %s -----\n' "$logfile"
        tail -n 30 "$logfile" || true
        printf -- '----- end of %s -----\n' "$logfile"
      else
        printf '[devstack] (log file is empty or does not exist)\n'
      fi
    done
  } >&2
  exit 1
}

# ---------------------------------------------------------------- packages

_apt_updated=0
# ensure_packages PKG... : apt-get install the ones that are not installed yet.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  if [[ $_apt_updated -eq 0 ]]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    _apt_updated=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_java() {
  ensure_packages openjdk-17-jdk-headless
  if [[ ! -x "$JAVA_BIN" && -d /usr/lib/jvm/java-17-openjdk-amd64 ]]; then
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
    JAVA_BIN=$JAVA_HOME/bin/java
    JAVAC_BIN=$JAVA_HOME/bin/javac
    export JAVA_HOME
  fi
}

# java_major JAVA_HOME_DIR: the feature version of that JDK (17, 21, 25, ...), from its
# `release` file or, failing that, from `java -version`.
java_major() {
  local home="$1" v=""
  [[ -x "$home/bin/java" ]] || return 1
  if [[ -f "$home/release" ]]; then
    v="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$home/release")"
  fi
  [[ -n "$v" ]] || v="$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  v="${v#1.}"
  v="${v%%[.+-]*}"
  [[ "$v" =~ ^[0-9]+$ ]] || return 1
  echo "$v"
}

# find_jdk MIN_MAJOR: print the home of a JDK (java and javac) of at least that version:
# DEVSTACK_JDK21_HOME, then JAVA_HOME, then the newest under /usr/lib/jvm. Fails if none.
find_jdk() {
  local min="$1" d best="" best_v=0 v
  for d in "${DEVSTACK_JDK21_HOME:-}" "${JAVA_HOME:-}"; do
    [[ -n "$d" && -x "$d/bin/javac" ]] || continue
    v="$(java_major "$d")" || continue
    if ((v >= min)); then echo "$d"; return 0; fi
  done
  for d in /usr/lib/jvm/*/; do
    d="${d%/}"
    [[ -L "$d" || ! -x "$d/bin/javac" ]] && continue
    v="$(java_major "$d")" || continue
    if ((v >= min && v > best_v)); then best="$d"; best_v=$v; fi
  done
  [[ -n "$best" ]] || return 1
  echo "$best"
}

ensure_maven() {
  ensure_java
  ensure_packages maven
}

# mvn_copy_deps POM OUTDIR : resolve POM's dependencies into OUTDIR (skipped when
# OUTDIR already holds a copy made from the same pom).
mvn_copy_deps() {
  local pom="$1" out="$2" stamp want
  stamp="$out/.devstack-pom.sha256"
  want="$(sha256sum "$pom" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  ensure_maven
  log "resolving jars for $(basename "$(dirname "$pom")") with Maven into $out"
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  local mvnlog="$out.maven.log"
  if ! mvn -B -q -Dstyle.color=never -s "$DEVSTACK_DIR/maven/settings.xml" -f "$pom" \
        dependency:copy-dependencies -DoutputDirectory="$out.tmp" -DincludeScope=runtime \
        >"$mvnlog" 2>&1; then
    rm -rf "$out.tmp"
    warn "mvn failed for $pom; log: $mvnlog"
    tail -n 30 "$mvnlog" >&2 || true
    return 1
  fi
  rm -rf "$out"
  mv "$out.tmp" "$out"
  echo "$want" >"$stamp"
}

# ---------------------------------------------------------------- processes

# pid_alive PID
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# read_pidfile FILE [CMDLINE_SUBSTRING] -> prints the pid if the file exists, the process
# is alive and (when given) its command line contains CMDLINE_SUBSTRING (guards against
# a stale pid file whose pid was reused by an unrelated process).
read_pidfile() {
  local f="$1" want="${2:-}" pid
  [[ -f "$f" ]] || return 1
  pid="$(head -n1 "$f" | tr -dc '0-9')"
  pid_alive "$pid" || return 1
  if [[ -n "$want" && -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$want" || return 1
  fi
  echo "$pid"
}

# stop_pid NAME PID [TIMEOUT_SECS] [SIGNAL]: SIGNAL (default TERM), wait, then SIGKILL.
stop_pid() {
  local name="$1" pid="$2" timeout="${3:-30}" sig="${4:-TERM}" i
  pid_alive "$pid" || return 0
  log "stopping $name (pid $pid, SIG$sig)"
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.2
  done
  warn "$name (pid $pid) still alive after ${timeout}s: sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.2
  done
  warn "$name (pid $pid) survived SIGKILL"
  return 1
}

# port_open PORT [HOST]: true if something accepts TCP connections there.
port_open() {
  local port="$1" host="${2:-127.0.0.1}"
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# wait_until TIMEOUT_SECS CMD...: retry CMD every second until it succeeds.
wait_until() {
  local timeout="$1"; shift
  local deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  "$@" >/dev/null 2>&1
}

# spawn_detached PIDFILE LOGFILE CMD... : start CMD in its own session, immune to
# SIGHUP, stdin from /dev/null, stdout+stderr appended to LOGFILE; writes its pid.
# JVM_QUICK_START: extra JVM options for a service started with DEVSTACK_JVM_QUICK_START=1 (make test
# sets it). The client compiler only (C1): a JVM that boots, indexes a few thousand documents and is
# stopped again by a drill spends less than half the CPU it would on C2's compilations, and the test
# suite, many such JVMs on two cores, is CPU-bound. Long runs (make up, benchmarks) keep C2.
jvm_quick_start_opts() {
  if [[ "${DEVSTACK_JVM_QUICK_START:-0}" == 1 ]]; then
    echo "-XX:TieredStopAtLevel=1"
  fi
}

spawn_detached() {
  local pidfile="$1" logfile="$2"; shift 2
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  rm -f "$pidfile"
  printf '===== [devstack] %s starting: %s =====\n' "$(date -u +%FT%TZ)" "$(basename "$1")" >>"$logfile"
  # The inner shell writes its own pid and then execs CMD, so the pid is CMD's.
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
    </dev/null >>"$logfile" 2>&1 9>&- &
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.1
  done
  return 1
}

# devstack_lock: serialise concurrent up/down runs (fd 9; spawned services close it).
devstack_lock() {
  exec 9>"$DEVSTACK_HOME/.lock"
  if ! flock -w 900 9; then
    echo "[devstack] another devstack/up or down is still running (lock $DEVSTACK_HOME/.lock)" >&2
    exit 1
  fi
}

# service_line NAME STATE DETAIL
service_line() { printf '%-13s %-5s %s\n' "$1" "$2" "$3"; }
