//! The deployment homes (crontab, systemd, Kubernetes, Docker), checked as far as this machine
//! allows: every command they run parses with this build's command line, and each home keeps
//! the properties the operators rely on (Asia/Seoul times, one run at a time, secrets, -q,
//! metrics and pings, a non-root image).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde::Deserialize as _;
use serde_norway::Value;
use wolley_push::cli::Cli;

use crate::harness::RunToEnd;

const JOBS: [&str; 4] = ["save-location", "path-daily", "path-daily --remind", "stats weekly"];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repository().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Parses `args` (after the binary) as this build's command line would.
fn assert_parses(args: &[&str], source: &str) {
    let argv = std::iter::once("wolley-push").chain(args.iter().copied());
    if let Err(error) = Cli::try_parse_from(argv) {
        panic!("{source}: `wolley-push {}` does not parse: {error}", args.join(" "));
    }
}

/// The job a command line runs: `save-location`, `path-daily`, `path-daily --remind` or
/// `stats weekly`.
fn job_of(args: &[&str]) -> String {
    match args {
        ["stats", sub, ..] => format!("stats {sub}"),
        ["path-daily", rest @ ..] if rest.contains(&"--remind") => "path-daily --remind".to_owned(),
        [job, ..] => (*job).to_owned(),
        [] => String::new(),
    }
}

// ---- crontab.example ----

/// (schedule, arguments after the binary, redirect) of each job line.
fn crontab_jobs() -> Vec<(String, Vec<String>, String)> {
    read("crontab.example")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter(|line| !line.split_whitespace().next().is_some_and(|first| first.contains('=')))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let schedule = fields[..5].join(" ");
            assert!(fields[5].ends_with("/wolley-push"), "runs the binary: {line}");
            let redirect_at =
                fields.iter().position(|f| *f == ">>").unwrap_or_else(|| panic!("no log: {line}"));
            let args = fields[6..redirect_at].iter().map(|s| s.to_string()).collect();
            (schedule, args, fields[redirect_at..].join(" "))
        })
        .collect()
}

#[test]
fn crontab_example_runs_in_seoul_time() {
    let text = read("crontab.example");
    assert!(text.lines().any(|line| line == "TZ=Asia/Seoul"), "{text}");
    assert!(text.lines().any(|line| line == "CRON_TZ=Asia/Seoul"), "{text}");
}

#[test]
fn crontab_example_schedules_every_job_at_its_times() {
    let jobs: Vec<(String, String)> = crontab_jobs()
        .into_iter()
        .map(|(schedule, args, _)| (job_of(&args.iter().map(String::as_str).collect::<Vec<_>>()), schedule))
        .collect();
    assert_eq!(
        jobs,
        [
            ("save-location".to_owned(), "7,37 * * * *".to_owned()),
            ("path-daily".to_owned(), "10 0 * * 1".to_owned()),
            ("path-daily --remind".to_owned(), "0 9 * * 1".to_owned()),
            ("stats weekly".to_owned(), "30 0,6,12,21 * * 1".to_owned()),
            ("stats weekly".to_owned(), "30 21 * * 2".to_owned()),
        ]
    );
}

#[test]
fn crontab_example_jobs_are_quiet_monitored_logged_and_parse() {
    for (_, args, redirect) in crontab_jobs() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for flag in ["-q", "--metrics-file", "--ping-url"] {
            assert!(args.contains(&flag), "{flag} missing in {args:?}");
        }
        assert!(redirect.starts_with(">> /var/log/") && redirect.ends_with("2>&1"), "{redirect}");
        assert_parses(&args, "crontab.example");
    }
}

// ---- deploy/systemd ----

fn systemd_dir() -> PathBuf {
    repository().join("deploy/systemd")
}

/// The value of `key=` in a unit file (the last one, as systemd reads it).
fn unit_value(text: &str, key: &str) -> Option<String> {
    unit_values(text, key).pop()
}

/// Every value of `key=` in a unit file, in order (a timer's `OnCalendar=` lines all count).
fn unit_values(text: &str, key: &str) -> Vec<String> {
    text.lines().filter_map(|line| line.strip_prefix(&format!("{key}="))).map(str::to_owned).collect()
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(systemd_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn systemd_has_a_service_and_a_timer_per_job_in_seoul_time() {
    for (job, calendar) in [
        ("save-location", "*-*-* *:07,37:00 Asia/Seoul"),
        ("path-daily", "Mon *-*-* 00:10:00 Asia/Seoul"),
        ("path-daily-remind", "Mon *-*-* 09:00:00 Asia/Seoul"),
        ("stats-weekly", "Mon *-*-* 00:30:00 Asia/Seoul"),
    ] {
        let timer = unit(&format!("wolley-push-{job}.timer"));
        // The first calendar is the job's own time (stats-weekly's refresh passes follow it).
        assert_eq!(unit_values(&timer, "OnCalendar").first().map(String::as_str), Some(calendar), "{job}");
        assert_eq!(unit_value(&timer, "WantedBy").as_deref(), Some("timers.target"), "{job}");
        let service = unit(&format!("wolley-push-{job}.service"));
        assert_eq!(unit_value(&service, "Type").as_deref(), Some("oneshot"), "{job}");
    }
}

#[test]
fn systemd_services_run_the_binary_quietly_with_metrics_as_a_non_root_user() {
    let mut jobs = Vec::new();
    for job in ["save-location", "path-daily", "path-daily-remind", "stats-weekly"] {
        let service = unit(&format!("wolley-push-{job}.service"));
        let exec = unit_value(&service, "ExecStart").unwrap();
        let fields: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(fields[0], "/usr/local/bin/wolley-push", "{exec}");
        assert!(fields.contains(&"-q") && fields.contains(&"--metrics-file"), "{exec}");
        assert_parses(&fields[1..], &format!("wolley-push-{job}.service"));
        jobs.push(job_of(&fields[1..]));
        assert_eq!(unit_value(&service, "User").as_deref(), Some("wolley-push"));
        assert!(
            service.contains("EnvironmentFile=-/etc/wolley-push/"),
            "an optional per-job env for the ping URL"
        );
    }
    assert_eq!(jobs, JOBS);
}

#[test]
fn systemd_units_pass_systemd_analyze_verify_where_it_is_installed() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("note: systemd-analyze is not installed; the units were only parsed");
        return;
    }
    // verify checks that ExecStart's binary exists: point the copies at this build's.
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for entry in std::fs::read_dir(systemd_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/usr/local/bin/wolley-push", env!("CARGO_BIN_EXE_wolley-push"));
        std::fs::write(dir.path().join(&name), text).unwrap();
        units.push(dir.path().join(&name));
    }
    assert_eq!(units.len(), 8, "{units:?}");
    let complaints =
        Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units).ran().exits(0).stderr();
    let ours: Vec<&str> = complaints.lines().filter(|line| line.contains("wolley-push")).collect();
    assert!(ours.is_empty(), "systemd-analyze verify warns: {ours:#?}");
    for unit in units.iter().filter(|unit| unit.extension().is_some_and(|e| e == "timer")) {
        for calendar in unit_values(&std::fs::read_to_string(unit).unwrap(), "OnCalendar") {
            let output = Command::new("systemd-analyze").args(["calendar", &calendar]).ran();
            assert_eq!(output.code(), 0, "{calendar}: {}", output.stderr());
        }
    }
}

// ---- deploy/kubernetes ----

fn kubernetes_documents(file: &str) -> Vec<Value> {
    let text = read(&format!("deploy/kubernetes/{file}"));
    serde_norway::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{file}: {e}")))
        .filter(|value| !value.is_null())
        .collect()
}

fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(value, |value, key| match key.parse::<usize>() {
        Ok(index) => &value[index],
        Err(_) => &value[key],
    })
}

fn text<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path).as_str().unwrap_or_else(|| panic!("{path} is not a string in {value:?}"))
}

fn cronjobs() -> Vec<(String, Value)> {
    ["cronjobs.yaml", "save-location-sharded.yaml"]
        .into_iter()
        .flat_map(|file| kubernetes_documents(file).into_iter().map(move |doc| (file.to_owned(), doc)))
        .filter(|(_, doc)| text(doc, "kind") == "CronJob")
        .collect()
}

fn container(cronjob: &Value) -> &Value {
    at(cronjob, "spec.jobTemplate.spec.template.spec.containers.0")
}

fn args(cronjob: &Value) -> Vec<&str> {
    at(container(cronjob), "args").as_sequence().unwrap().iter().map(|arg| arg.as_str().unwrap()).collect()
}

#[test]
fn kubernetes_cronjobs_run_every_job_in_seoul_time_one_at_a_time() {
    let cronjobs = cronjobs();
    let mut jobs = Vec::new();
    for (file, cronjob) in &cronjobs {
        let name = text(cronjob, "metadata.name");
        assert_eq!(text(cronjob, "apiVersion"), "batch/v1", "{file} {name}");
        assert_eq!(text(cronjob, "spec.timeZone"), "Asia/Seoul", "{file} {name}");
        assert_eq!(text(cronjob, "spec.concurrencyPolicy"), "Forbid", "{file} {name}");
        assert_eq!(text(cronjob, "spec.jobTemplate.spec.template.spec.restartPolicy"), "Never");
        let args = args(cronjob);
        assert!(args.contains(&"-q"), "{name}: {args:?}");
        assert_parses(&args, &format!("{file} {name}"));
        jobs.push(job_of(&args));
    }
    for job in JOBS {
        assert!(jobs.iter().any(|j| j == job), "no CronJob runs {job}: {jobs:?}");
    }
    let schedules: Vec<&str> = cronjobs.iter().map(|(_, c)| text(c, "spec.schedule")).collect();
    for schedule in ["7,37 * * * *", "10 0 * * 1", "0 9 * * 1", "30 0,6,12,21 * * 1", "30 21 * * 2"] {
        assert!(schedules.contains(&schedule), "{schedules:?}");
    }
}

#[test]
fn kubernetes_cronjobs_take_the_database_url_and_the_key_from_secrets() {
    for (_, cronjob) in cronjobs() {
        let name = text(&cronjob, "metadata.name").to_owned();
        let container = container(&cronjob);
        let env = at(container, "env").as_sequence().unwrap();
        let var = |wanted: &str| {
            env.iter()
                .find(|var| text(var, "name") == wanted)
                .unwrap_or_else(|| panic!("{name}: no {wanted}"))
        };
        let url = var("WOLLEY_DATABASE_URL");
        assert!(at(url, "valueFrom.secretKeyRef.name").is_string(), "{name}: the URL comes from a Secret");
        assert!(at(url, "value").is_null(), "{name}: the URL is not written in the manifest");
        let key_path = text(var("GOOGLE_APPLICATION_CREDENTIALS"), "value");
        let mount = at(container, "volumeMounts")
            .as_sequence()
            .unwrap()
            .iter()
            .find(|mount| key_path.starts_with(text(mount, "mountPath")))
            .unwrap_or_else(|| panic!("{name}: nothing is mounted at {key_path}"));
        assert_eq!(at(mount, "readOnly").as_bool(), Some(true));
        let volume = at(&cronjob, "spec.jobTemplate.spec.template.spec.volumes")
            .as_sequence()
            .unwrap()
            .iter()
            .find(|volume| text(volume, "name") == text(mount, "name"))
            .unwrap();
        assert!(at(volume, "secret.secretName").is_string(), "{name}: the key comes from a Secret");
        assert_eq!(
            at(&var("WOLLEY_PING_URL")["valueFrom"]["secretKeyRef"], "optional").as_bool(),
            Some(true)
        );
    }
}

#[test]
fn kubernetes_pods_run_as_a_non_root_user() {
    for (_, cronjob) in cronjobs() {
        let pod = at(&cronjob, "spec.jobTemplate.spec.template.spec");
        assert_eq!(at(pod, "securityContext.runAsNonRoot").as_bool(), Some(true));
        assert!(at(pod, "securityContext.runAsUser").as_u64().is_some_and(|uid| uid > 0));
    }
}

#[test]
fn the_indexed_job_variant_runs_one_shard_per_completion_index() {
    let (_, sharded) = cronjobs()
        .into_iter()
        .find(|(_, cronjob)| at(cronjob, "spec.jobTemplate.spec.completionMode").as_str() == Some("Indexed"))
        .expect("an Indexed Job variant");
    let job = at(&sharded, "spec.jobTemplate.spec");
    let completions = at(job, "completions").as_u64().unwrap();
    assert!(completions > 1);
    assert_eq!(at(job, "parallelism").as_u64(), Some(completions));
    let args = args(&sharded);
    let shards = args.iter().position(|arg| *arg == "--shards").map(|i| args[i + 1]);
    assert_eq!(shards, Some(completions.to_string().as_str()), "--shards N with N = completions: {args:?}");
}

#[test]
fn the_example_secrets_match_what_the_cronjobs_read() {
    let secrets: Vec<Value> = kubernetes_documents("secrets.example.yaml");
    let has = |name: &str, key: &str| {
        secrets.iter().any(|secret| {
            text(secret, "metadata.name") == name && !at(secret, &format!("stringData.{key}")).is_null()
        })
    };
    for (_, cronjob) in cronjobs() {
        for var in at(container(&cronjob), "env").as_sequence().unwrap() {
            if let Some(name) = at(var, "valueFrom.secretKeyRef.name").as_str() {
                let key = text(var, "valueFrom.secretKeyRef.key");
                assert!(has(name, key), "secrets.example.yaml has no {name}/{key}");
            }
        }
    }
}

// ---- Dockerfile, docker-compose.yml ----

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<String> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_as_non_root_in_a_small_one() {
    let instructions = dockerfile();
    let stages: Vec<usize> =
        instructions.iter().enumerate().filter(|(_, i)| i.starts_with("FROM ")).map(|(n, _)| n).collect();
    assert!(stages.len() >= 2, "multi-stage: {instructions:#?}");
    assert!(instructions[stages[0]].contains(" AS build"), "{}", instructions[stages[0]]);
    assert!(
        instructions.iter().any(|i| i.starts_with("RUN ") && i.contains("cargo build --release --locked")),
        "{instructions:#?}"
    );
    let runtime = &instructions[*stages.last().unwrap()..];
    assert!(!runtime[0].contains("rust:"), "the runtime image has no toolchain: {}", runtime[0]);
    assert!(runtime.iter().all(|i| !i.contains(":latest")), "pinned images");
    let user =
        runtime.iter().rev().find_map(|i| i.strip_prefix("USER ")).expect("a USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|uid| uid > 0), "a numeric non-root user: {user}");
    assert!(runtime.iter().any(|i| i.starts_with("COPY --from=build")));
    assert!(runtime.iter().any(|i| i.starts_with("ENTRYPOINT") && i.contains("wolley-push")));
}

#[test]
fn the_docker_build_context_leaves_out_the_target_directory_and_secrets() {
    let ignored: Vec<String> = read(".dockerignore").lines().map(str::to_owned).collect();
    for entry in ["target/", ".git/", "secrets/"] {
        assert!(ignored.iter().any(|line| line == entry), "{entry} in .dockerignore: {ignored:?}");
    }
}

#[test]
fn docker_compose_runs_wolley_push_beside_mariadb_10_5() {
    let compose: Value = serde_norway::from_str(&read("docker-compose.yml")).unwrap();
    let services = &compose["services"];
    assert_eq!(text(services, "mariadb.image"), "mariadb:10.5");
    let app = &services["wolley-push"];
    assert_eq!(app["build"].as_str(), Some("."));
    let url = text(app, "environment.WOLLEY_DATABASE_URL");
    assert!(url.starts_with("mysql://") && url.contains("@mariadb:3306/"), "{url}");
    assert!(!url.contains("CHANGE-ME") && url.contains("${"), "the password comes from .env: {url}");
    let secret = app["secrets"][0].as_str().unwrap();
    assert_eq!(text(app, "environment.GOOGLE_APPLICATION_CREDENTIALS"), format!("/run/secrets/{secret}"));
    assert!(compose["secrets"][secret]["file"].is_string());
    assert_eq!(text(app, "depends_on.mariadb.condition"), "service_healthy");
    let command: Vec<&str> =
        app["command"].as_sequence().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_parses(&command, "docker-compose.yml");
}

#[test]
fn every_home_file_exists() {
    for file in [
        "crontab.example",
        "Dockerfile",
        ".dockerignore",
        "docker-compose.yml",
        "deploy/systemd/wolley-push.env.example",
        "deploy/kubernetes/cronjobs.yaml",
        "deploy/kubernetes/save-location-sharded.yaml",
        "deploy/kubernetes/secrets.example.yaml",
    ] {
        assert!(Path::new(&repository().join(file)).is_file(), "{file}");
    }
}

// ---- save-location off FCM's peak minutes, the same in every home ----

/// The minutes of the hour of a cron schedule's minute field (`7,37`).
fn cron_minutes(schedule: &str) -> Vec<u32> {
    let field = schedule.split_whitespace().next().unwrap();
    field.split(',').map(|minute| minute.parse().unwrap_or_else(|_| panic!("{schedule}"))).collect()
}

/// Every home's save-location start minutes, named by where they come from.
fn save_location_minutes() -> Vec<(String, Vec<u32>)> {
    let mut homes = Vec::new();
    for (schedule, args, _) in crontab_jobs() {
        if job_of(&args.iter().map(String::as_str).collect::<Vec<_>>()) == "save-location" {
            homes.push(("crontab.example".to_owned(), cron_minutes(&schedule)));
        }
    }
    let docker_line = read("crontab.example")
        .lines()
        .find(|line| {
            line.starts_with("# ") && line.contains("docker compose") && line.contains("save-location")
        })
        .map(|line| line.trim_start_matches("# ").to_owned())
        .expect("crontab.example shows the docker compose line");
    homes.push(("crontab.example (docker compose)".to_owned(), cron_minutes(&docker_line)));
    let calendar = unit_value(&unit("wolley-push-save-location.timer"), "OnCalendar").unwrap();
    // `*-*-* *:07,37:00 Asia/Seoul`: the minutes are the field between the first two colons.
    let minutes = calendar.split(':').nth(1).unwrap();
    homes.push(("systemd".to_owned(), minutes.split(',').map(|m| m.parse().unwrap()).collect()));
    for (file, cronjob) in cronjobs() {
        if job_of(&args(&cronjob)) == "save-location" {
            homes.push((format!("kubernetes {file}"), cron_minutes(text(&cronjob, "spec.schedule"))));
        }
    }
    homes
}

#[test]
fn every_home_starts_save_location_off_fcms_peak_minutes() {
    for (home, minutes) in save_location_minutes() {
        for minute in &minutes {
            // FCM's traffic peaks in the first minutes of each hour and at :15, :30 and :45.
            let from_peak = [0, 15, 30, 45, 60].iter().map(|peak| minute.abs_diff(*peak)).min().unwrap();
            assert!(from_peak >= 3, "{home} starts save-location at :{minute:02}, on a peak");
        }
    }
}

#[test]
fn every_home_starts_save_location_once_in_each_half_hour_slot_at_the_same_minutes() {
    let homes = save_location_minutes();
    assert!(homes.len() >= 5, "{homes:?}");
    for (home, minutes) in &homes {
        let slots: Vec<u32> = minutes.iter().map(|minute| minute / 30).collect();
        assert_eq!(slots, [0, 1], "{home}: one start in each half-hour: {minutes:?}");
        assert_eq!(minutes[0] + 30, minutes[1], "{home}: the same offset in both slots: {minutes:?}");
        assert_eq!(minutes, &homes[0].1, "{home} differs from {}", homes[0].0);
    }
}

// ---- the weekly jobs' times, the same in every home ----

/// A weekly start: (ISO weekday, 1 = Monday; hour; minute), in Asia/Seoul.
type WeeklyTime = (u32, u32, u32);

/// The starts of a cron schedule of listed minutes, hours and weekdays (`30 0,6,12,21 * * 1`).
fn cron_times(schedule: &str) -> BTreeSet<WeeklyTime> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let list = |field: &str| -> Vec<u32> {
        field
            .split(',')
            .map(|n| n.parse().unwrap_or_else(|_| panic!("a list of numbers: {schedule}")))
            .collect()
    };
    assert_eq!(fields[2..4], ["*", "*"], "weekly: {schedule}");
    let mut times = BTreeSet::new();
    for day in list(fields[4]) {
        for hour in list(fields[1]) {
            for minute in list(fields[0]) {
                times.insert((day, hour, minute));
            }
        }
    }
    times
}

/// The start of a weekly `OnCalendar=` value (`Mon *-*-* 09:00:00 Asia/Seoul`).
fn calendar_time(calendar: &str) -> WeeklyTime {
    let fields: Vec<&str> = calendar.split_whitespace().collect();
    assert_eq!((fields.len(), fields[1], fields[3]), (4, "*-*-*", "Asia/Seoul"), "{calendar}");
    let day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].iter().position(|d| *d == fields[0]);
    let day = day.unwrap_or_else(|| panic!("one weekday: {calendar}")) as u32 + 1;
    let clock: Vec<u32> = fields[2].split(':').map(|n| n.parse().unwrap()).collect();
    assert_eq!(clock[2], 0, "{calendar}");
    (day, clock[0], clock[1])
}

/// Each home's starts of `job` (`path-daily --remind`, `stats weekly`), named by the home.
fn weekly_times(job: &str, unit_name: &str) -> Vec<(String, BTreeSet<WeeklyTime>)> {
    let mut cron = BTreeSet::new();
    for (schedule, args, _) in crontab_jobs() {
        if job_of(&args.iter().map(String::as_str).collect::<Vec<_>>()) == job {
            cron.extend(cron_times(&schedule));
        }
    }
    let timer = unit(&format!("wolley-push-{unit_name}.timer"));
    let systemd = unit_values(&timer, "OnCalendar").iter().map(|calendar| calendar_time(calendar)).collect();
    let mut kubernetes = BTreeSet::new();
    for (_, cronjob) in cronjobs() {
        if job_of(&args(&cronjob)) == job {
            kubernetes.extend(cron_times(text(&cronjob, "spec.schedule")));
        }
    }
    vec![
        ("crontab.example".to_owned(), cron),
        ("systemd".to_owned(), systemd),
        ("kubernetes".to_owned(), kubernetes),
    ]
}

#[test]
fn every_home_sends_the_reminder_on_mondays_at_nine() {
    for (home, times) in weekly_times("path-daily --remind", "path-daily-remind") {
        assert_eq!(times, BTreeSet::from([(1, 9, 0)]), "{home}");
    }
}

#[test]
fn every_home_runs_stats_weekly_at_00_30_and_refreshes_it_on_monday_and_tuesday_evenings() {
    let expected = BTreeSet::from([(1, 0, 30), (1, 6, 30), (1, 12, 30), (1, 21, 30), (2, 21, 30)]);
    for (home, times) in weekly_times("stats weekly", "stats-weekly") {
        assert_eq!(times, expected, "{home}");
    }
}
