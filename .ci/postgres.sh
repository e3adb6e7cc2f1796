#!/usr/bin/env bash
# A PostgreSQL server for the tests of the shared deployment (tests/test_server_pg.py): Debian's `postgresql`,
# installed and started when missing (as root), with a role `foley` (password `foley`, CREATEDB) that the tests
# use through FOLEY_TEST_PG=postgresql+psycopg://foley:foley@127.0.0.1:5432/postgres. The tests make and drop
# their own databases. Without root, or with FOLEY_TEST_PG pointing elsewhere, nothing is changed here.
set -uo pipefail
if [ -n "${FOLEY_TEST_PG:-}" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
  echo "note: no PostgreSQL on 127.0.0.1:5432 and not root: the PostgreSQL tests will be skipped"; exit 0
fi
if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || {
    echo "note: could not install postgresql: the PostgreSQL tests will be skipped"; exit 0; }
fi
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 {print $1 " " $2; exit}')
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_createcluster -p 5432 "$version" main >/dev/null && cluster="$version main"
fi
# shellcheck disable=SC2086
pg_lsclusters --no-header | awk '$3 == 5432' | grep -q online || pg_ctlcluster $cluster start || {
  echo "note: could not start PostgreSQL ($cluster): the PostgreSQL tests will be skipped"; exit 0; }
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
su postgres -c "psql -q -p 5432 -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'foley'\"" | grep -q 1 ||
  su postgres -c "psql -q -p 5432 -c \"CREATE ROLE foley LOGIN CREATEDB PASSWORD 'foley'\""
