#!/usr/bin/env bash
# Start the local PostgreSQL and NATS (JetStream) servers the tests use, if they are down.
set -uo pipefail
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "==> starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 30); do pg_up && break; sleep 1; done
  fi
  pg_up || echo "!! PostgreSQL is not reachable on 127.0.0.1:5432; set LEDGER_TEST_PG_URL" >&2
fi
if ! nats_up; then
  if [ -x /usr/sbin/nats-server ]; then
    echo "==> starting NATS with JetStream" >&2
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
    for _ in $(seq 20); do nats_up && break; sleep 0.5; done
  fi
  nats_up || echo "!! NATS is not reachable on 127.0.0.1:4222" >&2
fi
exit 0
