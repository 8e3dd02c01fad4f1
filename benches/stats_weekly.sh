#!/usr/bin/env bash
# Benchmark of `wolley-push stats weekly`: one week of USERS users x 7 days x 15 intervals
# (10 stays + 5 moves a day; 1,050,000 rows for the default 10,000 users), aggregated and
# written by the release binary. Prints the wall time of the `stats weekly` run.
#
#   benches/stats_weekly.sh              # from the repository root
#   USERS=1000 KEEP=1 benches/stats_weekly.sh
#   HISTORY_WEEKS=52 benches/stats_weekly.sh   # plus a year of older days in dailypath
#
# Needs the `mariadb` (or `mysql`) client and a MariaDB server: BENCH_MYSQL_HOST (127.0.0.1),
# BENCH_MYSQL_PORT (3306), BENCH_MYSQL_USER (root), and MYSQL_PWD if the user has a password.
# The scratch database is dropped at the end unless KEEP=1.
set -euo pipefail

cd "$(dirname "$0")/.."
USERS=${USERS:-10000}
HISTORY_WEEKS=${HISTORY_WEEKS:-0}
WEEK=2026-W48
MONDAY=2026-11-23
HOST=${BENCH_MYSQL_HOST:-127.0.0.1}
PORT=${BENCH_MYSQL_PORT:-3306}
USER_NAME=${BENCH_MYSQL_USER:-root}
DB=wolley_bench_stats_$$
CLIENT=$(command -v mariadb || command -v mysql)
SCHEMA=${WOLLEY_BACKEND_SCHEMA:-tests/fixtures/schema/wolley-backend.sql}

sql() { "$CLIENT" -h "$HOST" -P "$PORT" -u "$USER_NAME" --default-character-set=utf8mb4 "$@"; }
cleanup() { [ "${KEEP:-0}" = 1 ] || sql -e "DROP DATABASE IF EXISTS \`$DB\`"; }
trap cleanup EXIT

echo "building the release binary..." >&2
cargo build --release --quiet --bin wolley-push
BIN=target/release/wolley-push

echo "generating $USERS users x 7 days x 15 intervals in $DB..." >&2
sql -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
sql "$DB" < "$SCHEMA"
generate_started=$(date +%s.%N)
sql "$DB" <<SQL
SET SESSION foreign_key_checks = 0, unique_checks = 0;
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
  SELECT seq, '', 0, CONCAT('user', seq), '', '', '', 0, 1, NOW() FROM seq_1_to_${USERS};
INSERT INTO app_user (user_id, fcmToken) SELECT seq, CONCAT('bench-token:APA91b-', seq) FROM seq_1_to_${USERS};
-- One day per user and date, a few of them reconstructed ('past').
INSERT INTO dailypath (dailypath_id, date, path_type, date_created, last_updated, user_id)
  SELECT (u.seq - 1) * 7 + d.seq + 1, '${MONDAY}' + INTERVAL d.seq DAY,
         IF(MOD(u.seq, 50) = 0 AND d.seq = 2, 'past', 'daily'), NOW(6), NOW(6), u.seq
  FROM seq_1_to_${USERS} u JOIN seq_0_to_6 d;
-- Ten stays a day, 2 h apart, lasting 80-119 minutes; the last one runs past midnight.
INSERT INTO intervalstay (start_time, end_time, latitude, longitude, address, category, location, location_id,
                          percent, date_created, last_updated, daily_path_id)
  SELECT p.date + INTERVAL (k.seq * 120 + MOD(p.dailypath_id, 7)) MINUTE,
         p.date + INTERVAL (k.seq * 120 + MOD(p.dailypath_id, 7) + 80 + MOD(p.dailypath_id * 31 + k.seq * 17, 40)
                            + IF(k.seq = 9, 480, 0)) MINUTE,
         37.5, 127.0, '서울', ELT(1 + MOD(p.user_id * 7 + k.seq * 3 + DAYOFWEEK(p.date), 12),
             '집', '회사', '학교', '식사', '카페', '쇼핑', '병원', '운동', '모임', '기타', '?', '집'),
         '', '', 0.5, NOW(6), NOW(6), p.dailypath_id
  FROM dailypath p JOIN seq_0_to_9 k;
-- Five moves a day, overlapping the stays' edges.
INSERT INTO intervalmove (start_time, end_time, transport, percent, date_created, last_updated, daily_path_id)
  SELECT p.date + INTERVAL (k.seq * 240 + 100) MINUTE, p.date + INTERVAL (k.seq * 240 + 130) MINUTE,
         'walk', 0.5, NOW(6), NOW(6), p.dailypath_id
  FROM dailypath p JOIN seq_0_to_4 k;
SQL
if [ "$HISTORY_WEEKS" -gt 0 ]; then
    # Older days (without intervals): what a year in production adds to the scan of dailypath.
    sql "$DB" -e "SET SESSION foreign_key_checks = 0;
      INSERT INTO dailypath (date, path_type, date_created, last_updated, user_id)
      SELECT '${MONDAY}' - INTERVAL d.seq DAY, 'daily', NOW(6), NOW(6), u.seq
      FROM seq_1_to_${USERS} u JOIN seq_2_to_$((HISTORY_WEEKS * 7 + 1)) d"
fi
sql "$DB" -e "ANALYZE TABLE dailypath, intervalstay, intervalmove" > /dev/null
generate_ended=$(date +%s.%N)
rows=$(sql -N "$DB" -e "SELECT (SELECT COUNT(*) FROM intervalstay) + (SELECT COUNT(*) FROM intervalmove)")
echo "generated $rows interval rows in $(echo "$generate_ended - $generate_started" | bc) s" >&2

URL="mysql://${USER_NAME}${MYSQL_PWD:+:$MYSQL_PWD}@${HOST}:${PORT}/${DB}"
WOLLEY_DATABASE_URL=$URL "$BIN" migrate -q > /dev/null

started=$(date +%s.%N)
WOLLEY_DATABASE_URL=$URL "$BIN" stats weekly --week "$WEEK" --timezone Asia/Seoul --progress never
ended=$(date +%s.%N)
echo
days=$(sql -N "$DB" -e "SELECT COUNT(*) FROM dailypath")
echo "stats weekly $WEEK over $rows interval rows ($USERS users, $days dailypath rows): $(echo "$ended - $started" | bc) s wall time"
