#!/usr/bin/env bash
# The Debian packages the test suite uses, installed when missing and we are root:
# curl (Braze's documented request in the smoke test), wrk (the benchmark's load),
# chromium and a font (the dashboard's browser tests), clickhouse-server (the ClickHouse
# store's tests; it pulls in clickhouse-common), redis-server (several API nodes
# sharing one store) and zookeeper (a ClickHouse cluster's replicas and ON CLUSTER DDL in
# the cluster tests; it pulls in a Java runtime). Without root, the tests that need a
# missing one are skipped and say why, except those of ClickHouse, Redis and ZooKeeper:
# they fail, since they are tested on every run.
set -euo pipefail
need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ -x /usr/sbin/clickhouse-server ] || need+=(clickhouse-server)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ -e /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${need[*]} (run as root to install them)"
    exit 0
fi
echo "system-deps: installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
