#!/usr/bin/env bash
# A throwaway single-node Apache Kafka broker (KRaft: one process is broker and controller) on
# 127.0.0.1 for the kafka-go e2e test (tests/e2e/kafka.test.ts) and bench/kafka-overhead.sh.
#
#   scripts/services/kafka.sh install          # fetch the broker's jars (Maven) into .cache/kafka/libs
#   scripts/services/kafka.sh start [TOPIC...] # install, start the broker unless it answers, create topics
#   scripts/services/kafka.sh stop             # stop the broker this script started
#
# Idempotent and quick when done: install checks a stamp of the pom, start returns as soon as the
# port answers and the topics exist. The jars come from Maven Central through `mvn
# dependency:copy-dependencies` on scripts/services/kafka/pom.xml; the broker runs on the
# machine's Java (Kafka 4 needs >= 17) with a small heap. Its log dir is wiped on every fresh
# start: nothing in it outlives a test run. Prints "kafka 127.0.0.1:PORT" when ready.
#
# Environment: BEETRACE_KAFKA_PORT (default 39092; the controller listens on PORT+1),
#              BEETRACE_KAFKA_WAIT (seconds to wait for the port, default 120).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE="$ROOT/.cache/kafka"
LIBS="$CACHE/libs"
RUN="$CACHE/run"
POM="$ROOT/scripts/services/kafka/pom.xml"
PORT="${BEETRACE_KAFKA_PORT:-39092}"
CPORT=$((PORT + 1))
WAIT="${BEETRACE_KAFKA_WAIT:-120}"

log() { echo "kafka.sh: $*" >&2; }

install() {
  local stamp="$LIBS/.pom-sha256" want
  want=$(sha256sum "$POM" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
    return 0
  fi
  # Debian 12 packages Java 17 (Kafka 4's broker needs >= 17) and Maven.
  local need=()
  command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  log "fetching the Kafka broker's jars (Maven)"
  rm -rf "$LIBS.tmp" && mkdir -p "$LIBS.tmp"
  (cd "$(dirname "$POM")" && nice -n 10 mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp")
  rm -rf "$LIBS" && mv "$LIBS.tmp" "$LIBS"
  echo "$want" >"$stamp"
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

java_cp() { nice -n 5 java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$LIBS/*" "$@"; }

start() {
  install
  if ! answers "$PORT"; then
    rm -rf "$RUN" && mkdir -p "$RUN/data"
    cat >"$RUN/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    # Any valid base64 UUID names the cluster; a fixed one keeps runs alike.
    java_cp kafka.tools.StorageTool format -t "bEeTrAcEkAfKaTeStClUsA" -c "$RUN/server.properties" >"$RUN/format.log" 2>&1 ||
      { cat "$RUN/format.log" >&2; log "formatting the log dir failed"; exit 1; }
    log "starting the broker on 127.0.0.1:$PORT"
    # setsid: the broker outlives this script (tests call it again to reuse the running broker).
    setsid nohup java -Xms128m -Xmx512m -XX:+UseSerialGC -cp "$LIBS/*" \
      -Dlog4j2.level=WARN kafka.Kafka "$RUN/server.properties" >"$RUN/broker.log" 2>&1 </dev/null &
    echo $! >"$RUN/broker.pid"
    local t=0
    until answers "$PORT"; do
      if ! kill -0 "$(cat "$RUN/broker.pid")" 2>/dev/null; then
        tail -n 30 "$RUN/broker.log" >&2; log "the broker exited"; exit 1
      fi
      t=$((t + 1))
      [ "$t" -le $((WAIT * 2)) ] || { tail -n 30 "$RUN/broker.log" >&2; log "the broker did not answer in ${WAIT}s"; exit 1; }
      sleep 0.5
    done
  fi
  for topic in "$@"; do
    java_cp org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" --create --if-not-exists \
      --topic "$topic" --partitions 1 --replication-factor 1 >"$RUN/topic.log" 2>&1 ||
      { cat "$RUN/topic.log" >&2; log "creating topic $topic failed"; exit 1; }
  done
  echo "kafka 127.0.0.1:$PORT"
}

stop() {
  local pidf="$RUN/broker.pid"
  [ -f "$pidf" ] || return 0
  local pid
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidf"
}

case "${1:-}" in
install) install ;;
start) shift; start "$@" ;;
stop) stop ;;
*) echo "usage: $0 install | start [TOPIC...] | stop" >&2; exit 2 ;;
esac
