#!/usr/bin/env bash
# `make test`: every stage of the suite, with the search nodes of the later stages started while
# the first one runs, and the later stages run side by side. Prints each stage's time.
#
#   1. the default suite on OpenSearch 2.19, in two pytest-xdist workers (each its own node,
#      os-test on 9203 and os-test-b on 9204, Redis database and test database)
#   2. at once: the engine tests on Elasticsearch 7.17, the same on OpenSearch 3.x, and the
#      drills on the three-node cluster and a broker of their own (each its own nodes, Redis
#      database, test database and topics; a drill stops only its own nodes)
#
# Stages that run at once keep their output apart: each writes a log, printed when it ends.
set -uo pipefail
cd "$(dirname "$0")/.."

make=${MAKE:-make}
# The JVMs the suite starts (search nodes, Kafka Connect, drill brokers) boot on the client compiler:
# half the CPU per boot and per short burst of indexing, on two cores the suite keeps busy
# (devstack/lib/common.sh, jvm_quick_start_opts).
export DEVSTACK_JVM_QUICK_START=${DEVSTACK_JVM_QUICK_START:-1}
logs=${SEARCHSYNC_TEST_LOGS:-.devstack/test-logs}
mkdir -p "$logs"
declare -A took status
order=()

stage() {  # stage NAME COMMAND...: run in the foreground, timed
  local name=$1 start=$SECONDS
  shift
  order+=("$name")
  "$@"
  status[$name]=$?
  took[$name]=$((SECONDS - start))
}

summary() {
  echo
  echo "make test: stage times"
  local failed=0
  for name in "${order[@]}"; do
    printf '  %-22s %4ds  %s\n' "$name" "${took[$name]:-0}" "$([[ ${status[$name]:-1} == 0 ]] && echo ok || echo FAILED)"
    [[ ${status[$name]:-1} == 0 ]] || failed=1
  done
  printf '  %-22s %4ds\n' total "$SECONDS"
  return $failed
}

# The later stages' nodes boot (JVM start, a minute or more each) while the default suite runs.
# devstack serialises its own commands, so a drill that stops its node waits for this, no more.
(devstack/up elasticsearch opensearch3 opensearch-cluster >"$logs/nodes.log" 2>&1) &
nodes=$!

stage default $make --no-print-directory test-default

wait $nodes || { echo "starting the other engines' nodes failed:"; cat "$logs/nodes.log"; }

# The later stages at once: three pytest processes, three test databases.
parallel() {
  local pids=() names=() start=$SECONDS
  for target in "$@"; do
    SEARCHSYNC_TEST_DB="test_searchsync_${target//-/_}" $make --no-print-directory "$target" >"$logs/$target.log" 2>&1 &
    pids+=($!)
    names+=("$target")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}"
    status[${names[$i]}]=$?
    took[${names[$i]}]=$((SECONDS - start))
    order+=("${names[$i]}")
    echo "=== ${names[$i]} (log $logs/${names[$i]}.log) ==="
    if [[ ${status[${names[$i]}]} == 0 ]]; then tail -n 15 "$logs/${names[$i]}.log"; else cat "$logs/${names[$i]}.log"; fi
  done
}
parallel test-elasticsearch test-opensearch3 test-cluster

summary
