#!/usr/bin/env bash
# What `make test-cluster` needs beyond .venv, installed when missing (idempotent, for a
# fresh CI machine as much as for a developer's):
#   - Debian's redis-server and PostgreSQL (initdb/pg_ctl/postgres), via apt-get;
#   - .venv-cluster: Airflow with its celery and postgres extras and this provider with
#     its s3 extra, all under constraints.txt (the tested set; the dev venv stays as locked);
#   - moto's S3 server comes from .venv (the [test] extra), which make builds first.
# Prints the PostgreSQL bin folder on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

pg_bin() {
    local initdb
    initdb=$(command -v initdb 2>/dev/null || true)
    if [[ -n $initdb ]]; then dirname "$(readlink -f "$initdb")"; return; fi
    # Debian keeps them out of PATH.
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[[ -n "$(pg_bin)" && -x "$(pg_bin)/initdb" ]] || missing+=(postgresql)
if ((${#missing[@]})); then
    echo "test-cluster: installing ${missing[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The cluster venv: rebuilt when the lock or the project's dependencies change.
if [[ ! -f .venv-cluster/.installed || pyproject.toml -nt .venv-cluster/.installed ||
      constraints.txt -nt .venv-cluster/.installed ]]; then
    echo "test-cluster: building .venv-cluster" >&2
    "$PYTHON" -m venv --clear .venv-cluster
    .venv-cluster/bin/pip install --quiet --upgrade pip >&2
    .venv-cluster/bin/pip install --quiet -c constraints.txt \
        'apache-airflow[postgres,celery]' -e '.[sandbox,s3]' >&2
    touch .venv-cluster/.installed
fi
pg_bin
