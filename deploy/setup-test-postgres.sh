#!/usr/bin/env bash
# Makes sure the Postgres the test suite uses answers: the URL in SHELLWEGO_TEST_POSTGRES_URL
# (default postgres://postgres@127.0.0.1:5432/test). When nothing answers on 127.0.0.1:5432, as
# root on Debian it installs Debian's postgresql, starts its cluster and creates the role and
# database the tests use. Run by `npm test` (scripts/test.ts); safe to run again.
set -euo pipefail
url="${SHELLWEGO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
default_url="postgres://postgres@127.0.0.1:5432/test"

answers() { command -v psql >/dev/null && psql "$url" -XAtqc 'SELECT 1' >/dev/null 2>&1; }

if answers; then exit 0; fi
if [[ "$url" != "$default_url" ]]; then
  echo "shellwego: no Postgres answers at SHELLWEGO_TEST_POSTGRES_URL=$url; start it, or unset the variable to use a local one" >&2
  exit 1
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "shellwego: the tests need Postgres at $url; install it (sudo apt-get install -y postgresql) and create the database: sudo -u postgres createdb test" >&2
  exit 1
fi
if ! command -v pg_ctlcluster >/dev/null; then
  echo "shellwego: installing postgresql for the tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql postgresql-client >&2
fi
version="$(ls /etc/postgresql | sort -V | tail -n 1)"
if [[ -z "$version" ]]; then
  echo "shellwego: postgresql is installed but has no cluster; create one: pg_createcluster <version> main" >&2
  exit 1
fi
conf="/etc/postgresql/$version/main"
# The tests connect over TCP as postgres without a password (a throwaway test server).
if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2
for _ in $(seq 1 30); do
  su postgres -c "psql -XAtqc 'SELECT 1'" >/dev/null 2>&1 && break
  sleep 1
done
if ! su postgres -c "psql -XAtqc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1; then
  su postgres -c "createdb test"
fi
answers || { echo "shellwego: started Postgres $version but $url still does not answer" >&2; exit 1; }
echo "shellwego: Postgres $version is ready for the tests at $url" >&2
