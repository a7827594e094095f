#!/usr/bin/env bash
# Create the dev stack's secret files (random values, no trailing newline) that docker-compose.yaml mounts as compose secrets.
#
#   docker/dev-secrets.sh [dir]     # default: $AIRFLOW_SECRETS_DIR or ./airflow-home/secrets
#
# Existing files are kept, so re-running never rotates a key under a running database (a new Fernet key
# would make stored connections unreadable). The directory is 0700 for the host; the files are 0644
# because compose mounts them as they are and the containers read them as uid 50000 / 999.
set -euo pipefail
dir="${1:-${AIRFLOW_SECRETS_DIR:-./airflow-home/secrets}}"
mkdir -p "$dir"
chmod 0700 "$dir"
py="$(command -v python3 || command -v python)"
random() { "$py" -c 'import secrets; print(secrets.token_urlsafe(32))'; }

put() {  # put <name> <value>: write once, never overwrite
  local file="$dir/$1"
  if [ -s "$file" ]; then echo "keep    $file"; return; fi
  (umask 022 && printf '%s' "$2" >"$file")  # no newline: Airflow's _CMD values are used verbatim
  echo "created $file"
}

put airflow_fernet_key "$("$py" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"
put airflow_jwt_secret "$(random)"
put airflow_api_secret_key "$(random)"
put postgres_password "$(random)"
put airflow_admin_password "$(random)"
# URL-safe token: no quoting needed inside the URL.
put airflow_db_conn "postgresql+psycopg2://airflow:$(tr -d '\n' <"$dir/postgres_password")@postgres/airflow"
put airflow_broker_url "redis://redis:6379/0"
