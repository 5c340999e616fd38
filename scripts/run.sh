#!/usr/bin/env bash
# Foreground process of `make run`: the API once it exists; until then, how to connect, and wait for Ctrl-C.
source "$(dirname "$0")/env.sh"
trap 'echo; "$ROOT/scripts/db.sh" stop; exit 0' INT TERM
cat <<TXT

aiquota is running.
  psql:  psql -h $PGHOST -p $PGPORT -U postgres $DBNAME
  try:   SELECT * FROM quota.consume('alice');
         SELECT * FROM quota.status('alice');
Press Ctrl-C to stop the cluster.
TXT
while true; do sleep 3600 & wait $!; done
