#!/usr/bin/env bash
# Benchmark of `wolley-push stats weekly`'s refresh for late uploads against its full recompute,
# without and with indexes on the backend's tables (created in the scratch database only).
#
# Generates USERS users x 7 days x (STAYS stays + MOVES moves a day) of the week 2026-W48, plus
# HISTORY_WEEKS older weeks of dailypath days (HISTORY_INTERVAL_WEEKS of them, the most recent,
# with intervals too), every row stamped `last_updated = 2026-11-30 00:00:00`. Then, in one run:
#
#   full        `stats weekly --week 2026-W48` (the week's first run: every user; FULL_RUNS times,
#               the later ones with --full), alternating with BASELINE_BIN's if given (a binary
#               built from an older commit: the full recompute before)
#   no index    PERCENT% of users upload late (their week's days, stays and moves re-stamped, each
#               stay one minute longer); the refresh (second run) must recompute exactly them
#   +interval index   CREATE INDEX on intervalstay(last_updated) and intervalmove(last_updated);
#               another PERCENT% upload late; the refresh again
#   +date index CREATE INDEX on dailypath(date); another PERCENT%; the refresh again
#
# and prints one line per measurement, the ratio refresh / full, and for each stage the EXPLAIN
# and the server time of the statements that find the changed users (reproduced against a real
# table shaped like the run's session table of the week's days).
#
#   benches/stats_refresh.sh                                  # from the repository root: 100,000 users
#   USERS=10000 FULL_RUNS=3 BASELINE_BIN=/tmp/base/wolley-push benches/stats_refresh.sh   # before/after
#   USERS=1000000 STAYS=1 MOVES=0 benches/stats_refresh.sh    # 1M users' days, one stay a day
#   HISTORY_WEEKS=52 HISTORY_INTERVAL_WEEKS=1 KEEP=1 benches/stats_refresh.sh
#
# FULL_RUNS (1): full runs of each binary; FINAL_FULL=0 skips the last full run (with the indexes).
#
# PERCENT (1) must be a whole number from 1 to 33. A late upload is stamped one second after the
# published week's `computed_at` (what the refresh compares with): stamping the backend's clock
# now would be found as well, but a user stamped within two minutes before a run (the commit
# grace, src/stats/refresh.rs) is found again by the next run, which would add the previous
# stage's users to the next stage's count.
#
# Needs the `mariadb` (or `mysql`) client, python3 and a MariaDB server: BENCH_MYSQL_HOST
# (127.0.0.1), BENCH_MYSQL_PORT (3306), BENCH_MYSQL_USER (root), and MYSQL_PWD if the user has a
# password. The scratch database (and its indexes) is dropped at the end unless KEEP=1.
set -euo pipefail

cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
STAYS=${STAYS:-10}
MOVES=${MOVES:-5}
HISTORY_WEEKS=${HISTORY_WEEKS:-0}
HISTORY_INTERVAL_WEEKS=${HISTORY_INTERVAL_WEEKS:-0}
PERCENT=${PERCENT:-1}
FULL_RUNS=${FULL_RUNS:-1}
FINAL_FULL=${FINAL_FULL:-1}
BASELINE_BIN=${BASELINE_BIN:-}
FIXTURE_UPDATED="'2026-11-30 00:00:00'"
. benches/lib/week_fixture.sh
fixture_init wolley_bench_refresh
if [ "$PERCENT" -lt 1 ] || [ "$PERCENT" -gt 33 ]; then
    echo "PERCENT must be 1 to 33 (three stages of late uploads among 100)" >&2
    exit 2
fi
if [ "$HISTORY_INTERVAL_WEEKS" -gt "$HISTORY_WEEKS" ]; then
    echo "HISTORY_INTERVAL_WEEKS cannot exceed HISTORY_WEEKS" >&2
    exit 2
fi
fixture_build
SUNDAY=$(date -d "$MONDAY + 6 days" +%F)

echo "generating $USERS users x 7 days x ($STAYS stays + $MOVES moves) and $HISTORY_WEEKS older weeks in $DB..." >&2
fixture_create_db
step=$(now)
fixture_users "$USERS"
fixture_days "$USERS" 1
fixture_intervals TRUE "$STAYS" "$MOVES"
echo "  the week: $(elapsed "$step") s" >&2
step=$(now)
fixture_history "$USERS" "$HISTORY_WEEKS"
echo "  older days: $(elapsed "$step") s" >&2
if [ "$HISTORY_INTERVAL_WEEKS" -gt 0 ]; then
    step=$(now)
    fixture_intervals "p.dailypath_id > $((USERS * 7)) AND p.date >= '$MONDAY' - INTERVAL $((HISTORY_INTERVAL_WEEKS * 7 + 1)) DAY" \
        "$STAYS" "$MOVES"
    echo "  older intervals: $(elapsed "$step") s" >&2
fi
sql "$DB" -e "ANALYZE TABLE dailypath, intervalstay, intervalmove" > /dev/null
rows=$(fixture_interval_rows)
days=$(sql -N "$DB" -e "SELECT COUNT(*) FROM dailypath")
echo "data: $USERS users, $days dailypath rows, $rows interval rows"

# The server's CPU seconds so far (user + system), from /proc when it runs here; "" otherwise.
MARIADBD=$(pidof mariadbd mysqld 2>/dev/null | awk '{ print $1 }' || true)
server_cpu() {
    [ -n "$MARIADBD" ] && [ -r "/proc/$MARIADBD/stat" ] || return 0
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$MARIADBD/stat"
}

# run NAME BINARY ARGS...: times one `stats weekly` of the week, prints a summary line and
# records the wall time in WALL[NAME] (and the client's and the server's CPU seconds in CPU and
# SERVER: the server's includes whatever else it ran meanwhile); REPORT holds the JSON report.
declare -A WALL CPU SERVER
run() {
    local name=$1 bin=$2
    shift 2
    local started server_before
    server_before=$(server_cpu)
    started=$(now)
    REPORT=$(WOLLEY_DATABASE_URL=$URL /usr/bin/time -f "%U %S" -o "$DB.time" "$bin" stats weekly \
        --week "$WEEK" --timezone Asia/Seoul --progress never --format json "$@")
    WALL[$name]=$(elapsed "$started")
    CPU[$name]=$(awk '{ printf "%.2f", $1 + $2 }' "$DB.time")
    rm -f "$DB.time"
    SERVER[$name]=
    [ -z "$server_before" ] || SERVER[$name]=$(echo "$(server_cpu) - $server_before" | bc)
    local summary
    summary=$(python3 -c 'import json, sys; r = json.loads(sys.stdin.read())
print("scope %s, users %s, badges %s" % (r.get("scope", "full"), r["users"], r["badges_awarded"]))' <<< "$REPORT")
    echo "$name: ${WALL[$name]} s wall, ${CPU[$name]} s CPU, ${SERVER[$name]:-?} s server CPU; $summary"
}
users_of() { python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["users"])' <<< "$REPORT"; }
scope_of() { python3 -c 'import json, sys; print(json.loads(sys.stdin.read()).get("scope", "full"))' <<< "$REPORT"; }

# late_uploads STAGE: PERCENT% of users (user_id mod 100 in the stage's own range) upload their
# week again; prints how many users.
late_uploads() {
    local from=$((($1 - 1) * PERCENT)) to=$(($1 * PERCENT))
    sql "$DB" <<SQL
DROP TABLE IF EXISTS bench_late;
CREATE TABLE bench_late (user_id INT NOT NULL PRIMARY KEY)
  SELECT seq AS user_id FROM seq_1_to_${USERS} WHERE MOD(seq, 100) >= $from AND MOD(seq, 100) < $to;
SET @stamp = (SELECT computed_at + INTERVAL 1 SECOND FROM wolley_push_weekly_published WHERE week = '$WEEK');
UPDATE dailypath p JOIN bench_late t ON p.user_id = t.user_id SET p.last_updated = @stamp
  WHERE p.date BETWEEN '$MONDAY' AND '$SUNDAY';
UPDATE intervalstay i JOIN dailypath p ON p.dailypath_id = i.daily_path_id JOIN bench_late t ON p.user_id = t.user_id
  SET i.last_updated = @stamp, i.end_time = i.end_time + INTERVAL 1 MINUTE
  WHERE p.date BETWEEN '$MONDAY' AND '$SUNDAY';
UPDATE intervalmove i JOIN dailypath p ON p.dailypath_id = i.daily_path_id JOIN bench_late t ON p.user_id = t.user_id
  SET i.last_updated = @stamp
  WHERE p.date BETWEEN '$MONDAY' AND '$SUNDAY';
SQL
    sql -N "$DB" -e "SELECT COUNT(*) FROM bench_late"
}

# find_changed SINCE GENERATION: the refresh's statements that find the changed users
# (src/db/stats.rs: FILL_DAYS, CHANGED_DAYS, changed_intervals!), against a real table of the
# session table's shape: EXPLAIN of the interval ones, and the server's time for each.
find_changed() {
    local since=$1 generation=$2
    local user="LEFT JOIN wolley_push_weekly_user_gen u
      ON u.week = '$WEEK' AND u.generation = $generation AND u.user_id = w.user_id
      WHERE i.last_updated > '$since'
        AND (u.user_id IS NULL OR u.computed_at IS NULL OR i.last_updated > u.computed_at)"
    sql "$DB" -e "DROP TABLE IF EXISTS bench_week_day;
      CREATE TABLE bench_week_day (dailypath_id BIGINT NOT NULL PRIMARY KEY, user_id INT NOT NULL,
        day TINYINT NOT NULL, past TINYINT(1) NOT NULL, last_updated DATETIME(6) NOT NULL,
        KEY bench_week_day_user (user_id))"
    local t
    t=$(now)
    sql "$DB" -e "INSERT INTO bench_week_day SELECT dailypath_id, user_id, DATEDIFF(date, '$MONDAY'),
        path_type = 'past', last_updated FROM dailypath WHERE date BETWEEN '$MONDAY' - INTERVAL 1 DAY AND '$SUNDAY'"
    echo "    the week's days (FILL_DAYS): $(elapsed "$t") s"
    t=$(now)
    local n
    n=$(sql -N "$DB" -e "SELECT COUNT(*) FROM bench_week_day w LEFT JOIN wolley_push_weekly_user_gen u
        ON u.week = '$WEEK' AND u.generation = $generation AND u.user_id = w.user_id
        WHERE (u.user_id IS NULL AND w.last_updated > '$since')
           OR (u.user_id IS NOT NULL AND (u.computed_at IS NULL OR w.last_updated > u.computed_at))")
    echo "    changed days (CHANGED_DAYS): $(elapsed "$t") s, $n rows"
    for table in intervalstay intervalmove; do
        # As the run does: from the updated rows when an index starts with last_updated, else
        # from the week's days (changed_intervals!, FROM_UPDATED / FROM_WEEK).
        local indexed from
        indexed=$(sql -N "$DB" -e "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
            AND TABLE_NAME = '$table' AND COLUMN_NAME = 'last_updated' AND SEQ_IN_INDEX = 1")
        if [ "$indexed" -gt 0 ]; then
            from="FROM $table i JOIN bench_week_day w ON w.dailypath_id = i.daily_path_id"
        else
            from="FROM bench_week_day w JOIN $table i ON i.daily_path_id = w.dailypath_id"
        fi
        echo "    EXPLAIN changed $table:"
        sql "$DB" -t -e "EXPLAIN SELECT DISTINCT STRAIGHT_JOIN w.user_id $from $user" | sed 's/^/      /'
        t=$(now)
        n=$(sql -N "$DB" -e "SELECT COUNT(*) FROM (SELECT DISTINCT STRAIGHT_JOIN w.user_id $from $user) c")
        echo "    changed $table: $(elapsed "$t") s, $n users (with the since of that refresh)"
    done
    sql "$DB" -e "DROP TABLE bench_week_day"
}

# refresh_stage STAGE NAME: late uploads, the refresh, its check, and the statements reproduced.
refresh_stage() {
    local stage=$1 name=$2 late since generation
    late=$(late_uploads "$stage")
    IFS=$'\t' read -r since generation < <(sql -N "$DB" -e "SELECT computed_at, generation FROM wolley_push_weekly_published WHERE week = '$WEEK'")
    run "$name" "$BIN"
    local got scope
    got=$(users_of)
    scope=$(scope_of)
    if [ "$scope" != refresh ] || [ "$got" != "$late" ]; then
        echo "CHECK FAILED: $name recomputed $got users ($scope), expected $late (refresh)" >&2
        exit 1
    fi
    echo "  check: recomputed exactly the $late users who uploaded late; ratio $name / full (median): $(echo "scale=3; ${WALL[$name]} / ${WALL[full-median]}" | bc)"
    echo "  the statements that found them (server time, after the run, with its since):"
    find_changed "$since" "$generation"
}

# The full runs. With BASELINE_BIN: its run first (the week's very first run), then this build's,
# then FULL_RUNS - 1 more of each, alternating on the same data. The baseline (schema version 6)
# runs on this build's schema (7: two more nullable columns it does not write, a table and views
# it does not read) with the recorded version set back to 6 for its run: the only way to
# alternate the two in one database. This build's later runs take --full (a baseline run leaves
# the published week's computed_at as the last run of this build set it).
set_version() { sql "$DB" -e "UPDATE wolley_push_schema SET version = $1 WHERE id = 1"; }
if [ -n "$BASELINE_BIN" ]; then
    WOLLEY_DATABASE_URL=$URL "$BASELINE_BIN" migrate -q > /dev/null
    run "full-baseline#1" "$BASELINE_BIN"
    baseline_version=$(sql -N "$DB" -e "SELECT version FROM wolley_push_schema WHERE id = 1")
fi
WOLLEY_DATABASE_URL=$URL "$BIN" migrate -q > /dev/null
version=$(sql -N "$DB" -e "SELECT version FROM wolley_push_schema WHERE id = 1")
run "full" "$BIN"
[ "$(scope_of)" = full ] || { echo "CHECK FAILED: the first run was not full" >&2; exit 1; }
for i in $(seq 2 "$FULL_RUNS"); do
    if [ -n "$BASELINE_BIN" ]; then
        set_version "$baseline_version"
        run "full-baseline#$i" "$BASELINE_BIN"
        set_version "$version"
    fi
    run "full#$i" "$BIN" --full
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# medians_of NAME FIRST PREFIX: WALL, CPU and SERVER[NAME] = the medians over FIRST and PREFIX2..FULL_RUNS.
medians_of() {
    local name=$1 first=$2 prefix=$3 table runs i
    for table in WALL CPU SERVER; do
        local -n values=$table
        runs=("${values[$first]}")
        for i in $(seq 2 "$FULL_RUNS"); do runs+=("${values[$prefix$i]}"); done
        if [ -n "${runs[*]// /}" ]; then values[$name]=$(median "${runs[@]}"); else values[$name]=; fi
        echo "  $name: median $table ${values[$name]} s of ${runs[*]}"
    done
}
medians_of full-median full "full#"
if [ -n "$BASELINE_BIN" ]; then
    medians_of full-baseline "full-baseline#1" "full-baseline#"
    echo "  ratio full / full-baseline (medians): wall $(echo "scale=3; ${WALL[full-median]} / ${WALL[full-baseline]}" | bc), CPU $(echo "scale=3; ${CPU[full-median]} / ${CPU[full-baseline]}" | bc)"
fi

refresh_stage 1 "refresh, no index"

step=$(now)
sql "$DB" -e "CREATE INDEX bench_intervalstay_last_updated ON intervalstay (last_updated);
  CREATE INDEX bench_intervalmove_last_updated ON intervalmove (last_updated)"
echo "created the indexes on intervalstay(last_updated), intervalmove(last_updated) in $(elapsed "$step") s"
refresh_stage 2 "refresh, interval index"

step=$(now)
sql "$DB" -e "CREATE INDEX bench_dailypath_date ON dailypath (date)"
echo "created the index on dailypath(date) in $(elapsed "$step") s"
refresh_stage 3 "refresh, interval+date index"
[ "$FINAL_FULL" = 0 ] || run "full, interval+date index" "$BIN" --full

echo
echo "summary ($USERS users, $days dailypath rows, $rows interval rows, $PERCENT% late per refresh):"
for name in "full-baseline" "full" "full-median" "refresh, no index" "refresh, interval index" "refresh, interval+date index" \
    "full, interval+date index"; do
    [ -n "${WALL[$name]:-}" ] || continue
    echo "  $name: ${WALL[$name]} s wall (/ full median: $(echo "scale=3; ${WALL[$name]} / ${WALL[full-median]}" | bc)), ${CPU[$name]:-} s CPU, ${SERVER[$name]:-} s server CPU"
done
