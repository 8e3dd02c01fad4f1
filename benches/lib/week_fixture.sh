# Shared setup of the week benchmarks (benches/stats_weekly.sh, benches/stats_refresh.sh,
# benches/report_week.sh): the scratch database, the release binary, and a generated week of
# the backend's tables. Sourced, not run:
#
#   . "$(dirname "$0")/lib/week_fixture.sh"
#   fixture_init wolley_bench_stats        # DB, sql(), URL, the drop at exit unless KEEP=1
#   fixture_build                          # BIN: the release binary
#   fixture_create_db
#   fixture_users 10000                    # auth_user + app_user
#   fixture_days 10000 1                   # 7 dailypath rows per user (1: every 50th user's Wednesday 'past')
#   fixture_intervals "p.dailypath_id <= 70000" 10 5   # stays and moves a day of those days
#   fixture_history 10000 52               # 52 weeks of older days (no intervals)
#
# Reads BENCH_MYSQL_HOST (127.0.0.1), BENCH_MYSQL_PORT (3306), BENCH_MYSQL_USER (root),
# MYSQL_PWD, WOLLEY_BACKEND_SCHEMA, KEEP, and FIXTURE_UPDATED: the SQL expression stored as
# every generated row's `date_created` and `last_updated` (default `NOW(6)`).

WEEK=2026-W48
MONDAY=2026-11-23
HOST=${BENCH_MYSQL_HOST:-127.0.0.1}
PORT=${BENCH_MYSQL_PORT:-3306}
USER_NAME=${BENCH_MYSQL_USER:-root}
CLIENT=$(command -v mariadb || command -v mysql)
SCHEMA=${WOLLEY_BACKEND_SCHEMA:-tests/fixtures/schema/wolley-backend.sql}
FIXTURE_UPDATED=${FIXTURE_UPDATED:-NOW(6)}

sql() { "$CLIENT" -h "$HOST" -P "$PORT" -u "$USER_NAME" --default-character-set=utf8mb4 "$@"; }

# Seconds since the epoch, with fractions; `elapsed START` prints the seconds since START.
now() { date +%s.%N; }
elapsed() { printf '%.2f' "$(echo "$(now) - $1" | bc)"; }

# fixture_init PREFIX: the scratch database's name (PREFIX_PID), its URL, and the drop at exit.
fixture_init() {
    DB=${1}_$$
    URL="mysql://${USER_NAME}${MYSQL_PWD:+:$MYSQL_PWD}@${HOST}:${PORT}/${DB}"
    trap fixture_cleanup EXIT
}
fixture_cleanup() { [ "${KEEP:-0}" = 1 ] || sql -e "DROP DATABASE IF EXISTS \`$DB\`"; }

fixture_build() {
    echo "building the release binary..." >&2
    cargo build --release --quiet --bin wolley-push
    BIN=target/release/wolley-push
}

fixture_create_db() {
    sql -e "CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4"
    sql "$DB" < "$SCHEMA"
}

# fixture_users N: users 1..N, each with an app_user row and a token.
fixture_users() {
    sql "$DB" <<SQL
SET SESSION foreign_key_checks = 0, unique_checks = 0;
INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
  SELECT seq, '', 0, CONCAT('user', seq), '', '', '', 0, 1, NOW() FROM seq_1_to_$1;
INSERT INTO app_user (user_id, fcmToken) SELECT seq, CONCAT('bench-token:APA91b-', seq) FROM seq_1_to_$1;
SQL
}

# fixture_days N PAST: one dailypath row per user and day of the week, user u's day d with id
# (u - 1) * 7 + d + 1; with PAST=1 every 50th user's Wednesday is reconstructed ('past').
fixture_days() {
    local past="'daily'"
    [ "$2" = 1 ] && past="IF(MOD(u.seq, 50) = 0 AND d.seq = 2, 'past', 'daily')"
    sql "$DB" <<SQL
SET SESSION foreign_key_checks = 0, unique_checks = 0;
INSERT INTO dailypath (dailypath_id, date, path_type, date_created, last_updated, user_id)
  SELECT (u.seq - 1) * 7 + d.seq + 1, '${MONDAY}' + INTERVAL d.seq DAY, $past,
         ${FIXTURE_UPDATED}, ${FIXTURE_UPDATED}, u.seq
  FROM seq_1_to_$1 u JOIN seq_0_to_6 d;
SQL
}

# fixture_intervals WHERE STAYS MOVES: for the dailypath rows p matching WHERE, STAYS stays a
# day (at most 10), 2 h apart, lasting 80-119 minutes, the tenth running past midnight; and
# MOVES moves a day (at most 5), overlapping the stays' edges.
fixture_intervals() {
    local where=$1 stays=$2 moves=$3
    if [ "$stays" -gt 0 ]; then
        sql "$DB" <<SQL
SET SESSION foreign_key_checks = 0, unique_checks = 0;
INSERT INTO intervalstay (start_time, end_time, latitude, longitude, address, category, location, location_id,
                          percent, date_created, last_updated, daily_path_id)
  SELECT p.date + INTERVAL (k.seq * 120 + MOD(p.dailypath_id, 7)) MINUTE,
         p.date + INTERVAL (k.seq * 120 + MOD(p.dailypath_id, 7) + 80 + MOD(p.dailypath_id * 31 + k.seq * 17, 40)
                            + IF(k.seq = 9, 480, 0)) MINUTE,
         37.5, 127.0, '서울', ELT(1 + MOD(p.user_id * 7 + k.seq * 3 + DAYOFWEEK(p.date), 12),
             '집', '회사', '학교', '식사', '카페', '쇼핑', '병원', '운동', '모임', '기타', '?', '집'),
         '', '', 0.5, ${FIXTURE_UPDATED}, ${FIXTURE_UPDATED}, p.dailypath_id
  FROM dailypath p JOIN seq_0_to_$((stays - 1)) k
  WHERE $where;
SQL
    fi
    if [ "$moves" -gt 0 ]; then
        sql "$DB" <<SQL
SET SESSION foreign_key_checks = 0, unique_checks = 0;
INSERT INTO intervalmove (start_time, end_time, transport, percent, date_created, last_updated, daily_path_id)
  SELECT p.date + INTERVAL (k.seq * 240 + 100) MINUTE, p.date + INTERVAL (k.seq * 240 + 130) MINUTE,
         'walk', 0.5, ${FIXTURE_UPDATED}, ${FIXTURE_UPDATED}, p.dailypath_id
  FROM dailypath p JOIN seq_0_to_$((moves - 1)) k
  WHERE $where;
SQL
    fi
}

# fixture_history N WEEKS: WEEKS weeks of older days per user (Saturday before the week and
# earlier; not the Sunday before, which the week reads), without intervals: what a year in
# production adds to the scan of dailypath.
fixture_history() {
    [ "$2" -gt 0 ] || return 0
    sql "$DB" -e "SET SESSION foreign_key_checks = 0, unique_checks = 0;
      INSERT INTO dailypath (date, path_type, date_created, last_updated, user_id)
      SELECT '${MONDAY}' - INTERVAL d.seq DAY, 'daily', ${FIXTURE_UPDATED}, ${FIXTURE_UPDATED}, u.seq
      FROM seq_1_to_$1 u JOIN seq_2_to_$(($2 * 7 + 1)) d"
}

# fixture_interval_rows: stays + moves in the database.
fixture_interval_rows() {
    sql -N "$DB" -e "SELECT (SELECT COUNT(*) FROM intervalstay) + (SELECT COUNT(*) FROM intervalmove)"
}
