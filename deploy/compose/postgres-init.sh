#!/bin/sh
# Runs once, when the postgres volume is empty: one database and one login per
# service, so neither can read the other's data (DESIGN: nothing calls another
# service's database). Passwords come from .env (deploy/compose.env.example).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v analytics_password="$ANALYTICS_DB_PASSWORD" \
  -v notify_password="$NOTIFY_DB_PASSWORD" <<'SQL'
CREATE ROLE analytics LOGIN PASSWORD :'analytics_password';
CREATE DATABASE analytics OWNER analytics;
REVOKE ALL ON DATABASE analytics FROM PUBLIC;
CREATE ROLE notify LOGIN PASSWORD :'notify_password';
CREATE DATABASE notify OWNER notify;
REVOKE ALL ON DATABASE notify FROM PUBLIC;
SQL
