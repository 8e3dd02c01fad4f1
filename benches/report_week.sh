#!/usr/bin/env bash
# Benchmark of `wolley-push report week`: one week of USERS users x 7 days x POINTS points a day
# in gpslog (100,000 x 7 x 14 = 9.8 million rows by default), every save-location slot of the
# week in the journal, read by the release binary. Prints the report's wall time and peak
# memory (RSS).
#
#   benches/report_week.sh                  # from the repository root: the 10M-point week
#   USERS=10000 benches/report_week.sh      # 1M points
#   KEEP=1 benches/report_week.sh           # keep the scratch database
#
# Needs the `mariadb` (or `mysql`) client and a MariaDB server: BENCH_MYSQL_HOST (127.0.0.1),
# BENCH_MYSQL_PORT (3306), BENCH_MYSQL_USER (root), and MYSQL_PWD if the user has a password.
set -euo pipefail

cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
POINTS=${POINTS:-14}
WEEK=2026-W48
MONDAY=2026-11-23
HOST=${BENCH_MYSQL_HOST:-127.0.0.1}
PORT=${BENCH_MYSQL_PORT:-3306}
USER_NAME=${BENCH_MYSQL_USER:-root}
DB=wolley_bench_report_$$
CLIENT=$(command -v mariadb || command -v mysql)
SCHEMA=${WOLLEY_BACKEND_SCHEMA:-tests/fixtures/schema/wolley-backend.sql}

sql() { "$CLIENT" -h "$HOST" -P "$PORT" -u "$USER_NAME" --default-character-set=utf8mb4 "$@"; }
cleanup() { [ "${KEEP:-0}" = 1 ] || sql -e "DROP DATABASE IF EXISTS \`$DB\`"; }
trap cleanup EXIT

echo "building the release binary..." >&2
cargo build --release --quiet --bin wolley-push
BIN=target/release/wolley-push
URL="mysql://$USER_NAME${MYSQL_PWD:+:$MYSQL_PWD}@$HOST:$PORT/$DB"

echo "generating $USERS users x 7 days x $POINTS points in $DB..." >&2
sql -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
sql "$DB" < "$SCHEMA"
WOLLEY_DATABASE_URL="$URL" "$BIN" migrate -q
generate_started=$(date +%s.%N)
sql "$DB" >/dev/null <<SQL
SET SESSION foreign_key_checks = 0, unique_checks = 0;
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
  SELECT seq, '', 0, CONCAT('user', seq), '', '', '', 0, 1, NOW() FROM seq_1_to_${USERS};
INSERT INTO app_user (user_id, fcmToken) SELECT seq, CONCAT('bench-token:APA91b-', seq) FROM seq_1_to_${USERS};
INSERT INTO dailypath (dailypath_id, date, path_type, date_created, last_updated, user_id)
  SELECT (u.seq - 1) * 7 + d.seq + 1, '${MONDAY}' + INTERVAL d.seq DAY, 'daily', NOW(6), NOW(6), u.seq
  FROM seq_1_to_${USERS} u JOIN seq_0_to_6 d;
-- POINTS points a day, about 100 minutes apart, each user at its own offset: some fall in a
-- slot's wake window, some before it, most in neither.
INSERT INTO gpslog (latitude, longitude, timestamp, daily_path_id)
  SELECT 37.5, 127.0,
         p.date + INTERVAL (k.seq * 100 + MOD(p.user_id * 7 + k.seq * 13, 97)) MINUTE + INTERVAL MOD(p.dailypath_id, 60) SECOND,
         p.dailypath_id
  FROM dailypath p JOIN seq_0_to_$((POINTS - 1)) k;
-- Every save-location slot of the week, sent 4 s after its half-hour.
INSERT INTO wolley_push_run (job, slot, shard, status, targeted, sent, pruned, host, pid, started_at, updated_at)
  SELECT 'save-location', DATE_FORMAT('${MONDAY}' + INTERVAL seq * 30 MINUTE, '%Y-%m-%dT%H:%i:00+09:00'), '0/1',
         'done', ${USERS}, ${USERS}, 0, 'bench', 1,
         '${MONDAY}' + INTERVAL seq * 30 MINUTE - INTERVAL 9 HOUR + INTERVAL 4 SECOND, UTC_TIMESTAMP(6)
  FROM seq_0_to_335;
ANALYZE TABLE dailypath, gpslog \G
SQL
generate_ended=$(date +%s.%N)
rows=$(sql -N "$DB" -e "SELECT COUNT(*) FROM gpslog")
echo "generated $rows gpslog rows in $(echo "$generate_ended - $generate_started" | bc) s" >&2

echo "running report week..." >&2
/usr/bin/time -f "%e %M" -o "$DB.time" env WOLLEY_DATABASE_URL="$URL" WOLLEY_TIMEZONE=Asia/Seoul \
  "$BIN" report week --week "$WEEK" --format json > "$DB.json"
read -r wall rss < "$DB.time"
summary=$(python3 -c "import json,sys; r=json.load(open('$DB.json')); print(f\"active {r['active_users']}, wake median {r['wake_rate_median']}, lift median {r['lift_median']}, never woke {r['never_woke']}\")")
rm -f "$DB.time" "$DB.json"
echo "report week over $rows gpslog rows ($USERS users): ${wall} s wall, ${rss} KiB peak RSS; $summary"
