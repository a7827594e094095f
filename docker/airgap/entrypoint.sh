#!/usr/bin/env bash
# Entrypoint of the air-gapped Airflow base, with the official image's calling convention:
#   <image> scheduler | api-server | celery worker ...   -> airflow <args> (after waiting for the DB/broker)
#   <image> airflow <args>                                -> same
#   <image> bash ... | python ...                         -> run as given
# Waits are bounded: CONNECTION_CHECK_MAX_COUNT tries (default 20, 0 disables), CONNECTION_CHECK_SLEEP_TIME
# seconds apart (default 3). A database given through _CMD/_SECRET settings is found the same way Airflow
# finds it, because the check reads Airflow's own configuration.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  exec airflow --help
fi
case "$1" in
  bash | sh | python | python3) exec "$@" ;;
  airflow) shift ;;
esac

# Commands that need no database (or are how you debug a missing one) start at once.
case "${1:-}" in
  version | info | config | cheat-sheet | -h | --help) exec airflow "$@" ;;
esac

if [[ "${CONNECTION_CHECK_MAX_COUNT:-20}" != 0 ]]; then
  wait_args=(--db)
  if [[ "${1:-}" == celery ]]; then wait_args+=(--broker); fi
  python /usr/local/lib/containerkit/airflow-wait.py "${wait_args[@]}"
fi
exec airflow "$@"
