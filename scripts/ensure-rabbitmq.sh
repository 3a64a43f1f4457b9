#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672 (or $AMQP_HOST:$AMQP_PORT).
# Started if installed but not running; installed from Debian's packages if missing and we can;
# otherwise a clear message and a non-zero exit. Also creates the `acikkapi-test` vhost the
# tests use, so a test run never touches the queues of a locally running system.
set -euo pipefail
host=${AMQP_HOST:-127.0.0.1}
port=${AMQP_PORT:-5672}

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

wait_for_broker() {
  for _ in $(seq 1 60); do
    if answers; then return 0; fi
    sleep 1
  done
  return 1
}

if ! answers; then
  if [ "$host" != "127.0.0.1" ] && [ "$host" != "localhost" ]; then
    echo "RabbitMQ at $host:$port does not answer; start it there (or unset AMQP_HOST)." >&2
    exit 1
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
      echo "RabbitMQ is not installed: installing it from Debian's packages…"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    else
      echo "RabbitMQ is not installed and cannot be installed here (needs apt-get as root)." >&2
      echo "Install rabbitmq-server, or point AMQP_HOST/AMQP_PORT at a running broker." >&2
      exit 1
    fi
  fi
  echo "Starting RabbitMQ…"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  if ! wait_for_broker; then
    echo "RabbitMQ did not come up on $host:$port within 60 s." >&2
    exit 1
  fi
fi

if command -v rabbitmqctl >/dev/null 2>&1; then
  for _ in $(seq 1 30); do
    rabbitmqctl -q await_startup >/dev/null 2>&1 && break
    sleep 1
  done
  if ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "acikkapi-test"; then
    rabbitmqctl -q add_vhost acikkapi-test >/dev/null 2>&1 || true
  fi
  rabbitmqctl -q set_permissions -p acikkapi-test guest ".*" ".*" ".*" >/dev/null 2>&1 || true
fi
echo "RabbitMQ is up on $host:$port."
