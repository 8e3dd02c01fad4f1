//! `--metrics-file`: the Prometheus text file node_exporter's textfile collector reads.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_fcm::{Options, Reply};
use prometheus_parse::{Scrape, Value};

use crate::harness::{Ran, RunToEnd, World};

const DEAD: &str = "dead-device-token:APA91bF3x9QmZ1kTq7Lr2vYcN8sW4eJ6";

/// Every sample of the file, parsed by an independent Prometheus text parser, keyed by
/// `name{label=value,...}` with `wolley_job` first, then the other labels sorted.
fn samples(path: &Path) -> HashMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"));
    let mut samples = HashMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort_by_key(|label| (!label.starts_with("wolley_job="), label.clone()));
        let value = match sample.value {
            Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => v,
            other => panic!("{} is not a gauge: {other:?}", sample.metric),
        };
        let key = format!("{}{{{}}}", sample.metric, labels.join(","));
        assert!(samples.insert(key.clone(), value).is_none(), "{key} appears twice:\n{text}");
    }
    samples
}

fn sample(samples: &HashMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| panic!("no {key} in {samples:#?}"))
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn metrics_path(world: &World) -> PathBuf {
    let path = world.file("wolley-push.prom", "");
    std::fs::remove_file(&path).unwrap();
    path
}

fn run(world: &World, metrics: &Path, args: &[&str]) -> Ran {
    world.cmd().args(args).arg("--metrics-file").arg(metrics).ran()
}

/// A `--print` run of `job` over a tokens file: no network, no database.
fn print_run(world: &World, metrics: &Path, job: &str) -> Ran {
    let tokens = world.file("tokens.txt", "token-a:APA91bAAAA\ntoken-b:APA91bBBBB\n");
    let args: Vec<&str> = match job {
        "send" => vec!["send", "--token", "token-a:APA91bAAAA", "--print"],
        job => vec![job, "--tokens-file", tokens.to_str().unwrap(), "--print"],
    };
    run(world, metrics, &args).exits(0)
}

#[test]
fn a_run_writes_prometheus_text_with_its_counts_and_timestamps() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("alive-token:APA91bAlive")), (2, Some(DEAD)), (3, Some("abc"))]);
    world.fcm.script(DEAD, vec![Reply::unregistered()]);
    let metrics = metrics_path(&world);
    let before = now();
    run(&world, &metrics, &["save-location", "-q"]).exits(0);
    let samples = samples(&metrics);
    let job = "wolley_job=save-location";
    assert_eq!(sample(&samples, &format!("wolley_push_last_run_messages{{{job},result=sent}}")), 1.0);
    assert_eq!(sample(&samples, &format!("wolley_push_last_run_messages{{{job},result=pruned}}")), 1.0);
    for result in ["failed", "expired", "skipped"] {
        assert_eq!(sample(&samples, &format!("wolley_push_last_run_messages{{{job},result={result}}}")), 0.0);
    }
    assert_eq!(sample(&samples, &format!("wolley_push_last_run_exit_code{{{job}}}")), 0.0);
    let last_run = sample(&samples, &format!("wolley_push_last_run_timestamp_seconds{{{job}}}"));
    assert!(last_run >= before - 1.0 && last_run <= now() + 1.0, "{last_run} is not now");
    assert_eq!(sample(&samples, &format!("wolley_push_last_success_timestamp_seconds{{{job}}}")), last_run);
    assert!(sample(&samples, &format!("wolley_push_last_run_duration_seconds{{{job}}}")) >= 0.0);
}

#[test]
fn every_series_has_help_and_a_gauge_type() {
    let world = World::new();
    let metrics = metrics_path(&world);
    print_run(&world, &metrics, "save-location");
    let text = std::fs::read_to_string(&metrics).unwrap();
    for name in [
        "wolley_push_last_run_timestamp_seconds",
        "wolley_push_last_success_timestamp_seconds",
        "wolley_push_last_run_duration_seconds",
        "wolley_push_last_run_messages",
        "wolley_push_last_run_exit_code",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}:\n{text}");
    }
}

#[test]
fn a_failed_run_records_its_exit_code_but_keeps_the_last_success() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("alive-token:APA91bAlive"))]);
    let metrics = metrics_path(&world);
    run(&world, &metrics, &["save-location", "-q"]).exits(0);
    let success =
        sample(&samples(&metrics), "wolley_push_last_success_timestamp_seconds{wolley_job=save-location}");
    run(
        &world,
        &metrics,
        &["save-location", "-q", "--force", "--database-url", "mysql://root@127.0.0.1:1/wolley"],
    )
    .exits(75);
    let after = samples(&metrics);
    assert_eq!(
        sample(&after, "wolley_push_last_success_timestamp_seconds{wolley_job=save-location}"),
        success
    );
    assert!(sample(&after, "wolley_push_last_run_timestamp_seconds{wolley_job=save-location}") > success);
    assert_eq!(sample(&after, "wolley_push_last_run_exit_code{wolley_job=save-location}"), 75.0);
    assert!(
        !after.keys().any(|key| key.starts_with("wolley_push_last_run_messages{wolley_job=save-location")),
        "a run that stopped with an error counted no messages: {after:#?}"
    );
}

#[test]
fn a_run_that_fails_before_any_success_writes_no_success_timestamp() {
    let world = World::new();
    let metrics = metrics_path(&world);
    run(&world, &metrics, &["migrate", "--database-url", "mysql://root@127.0.0.1:1/wolley"]).exits(75);
    let samples = samples(&metrics);
    assert_eq!(sample(&samples, "wolley_push_last_run_exit_code{wolley_job=migrate}"), 75.0);
    assert!(
        !samples.contains_key("wolley_push_last_success_timestamp_seconds{wolley_job=migrate}"),
        "{samples:#?}"
    );
}

#[test]
fn each_job_keeps_the_other_jobs_series() {
    let world = World::new();
    let metrics = metrics_path(&world);
    for job in ["save-location", "path-daily", "send"] {
        print_run(&world, &metrics, job);
    }
    print_run(&world, &metrics, "save-location");
    let samples = samples(&metrics);
    for job in ["save-location", "path-daily", "send"] {
        assert_eq!(sample(&samples, &format!("wolley_push_last_run_exit_code{{wolley_job={job}}}")), 0.0);
        assert!(
            samples.contains_key(&format!("wolley_push_last_success_timestamp_seconds{{wolley_job={job}}}"))
        );
    }
}

#[test]
fn jobs_finishing_together_keep_each_others_series() {
    let world = World::new();
    let metrics = metrics_path(&world);
    // Each run reads its tokens from a FIFO and blocks until the test writes them: released
    // together, the runs write the metrics file at the same moment.
    let fifos: Vec<PathBuf> = (0..12)
        .map(|i| {
            let fifo = world.file(&format!("tokens-{i}.fifo"), "");
            std::fs::remove_file(&fifo).unwrap();
            assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
            fifo
        })
        .collect();
    let children: Vec<_> = fifos
        .iter()
        .enumerate()
        .map(|(i, fifo)| {
            let job = ["save-location", "path-daily"][i % 2];
            world
                .std_cmd()
                .args([job, "-q", "--print", "--shard", &format!("{i}/12"), "--tokens-file"])
                .arg(fifo)
                .arg("--metrics-file")
                .arg(&metrics)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let writers: Vec<std::fs::File> = fifos.iter().map(|fifo| std::fs::File::create(fifo).unwrap()).collect();
    for mut writer in writers {
        writer.write_all(b"token-a:APA91bAAAA\n").unwrap();
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let samples = samples(&metrics);
    for i in 0..12 {
        let job = ["save-location", "path-daily"][i % 2];
        let key = format!("wolley_push_last_run_exit_code{{wolley_job={job},shard={i}/12}}");
        assert_eq!(sample(&samples, &key), 0.0);
    }
}

#[test]
fn the_file_is_replaced_by_a_rename_never_rewritten_in_place() {
    let world = World::new();
    let metrics = metrics_path(&world);
    print_run(&world, &metrics, "save-location");
    let old_text = std::fs::read_to_string(&metrics).unwrap();
    let old_inode = std::fs::metadata(&metrics).unwrap().ino();
    // A reader that opened the old file (the collector mid-scrape) keeps reading it whole.
    let mut reader = std::fs::File::open(&metrics).unwrap();
    print_run(&world, &metrics, "path-daily");
    let mut seen = String::new();
    reader.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, old_text);
    assert_ne!(std::fs::metadata(&metrics).unwrap().ino(), old_inode, "the file was rewritten in place");
    let leftovers: Vec<_> = std::fs::read_dir(metrics.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_run_that_finds_the_lock_held_does_not_move_the_last_success() {
    let options = Options { latency: Duration::from_millis(200), ..Options::default() };
    let world = World::with_options(options).with_db();
    world.db().add_numbered_users(200);
    let metrics = metrics_path(&world);
    // A live run of the job, slow enough to hold the lock throughout.
    let mut holder = world.std_cmd().args(["save-location", "-q", "--concurrency", "1"]).spawn().unwrap();
    assert!(world.fcm.wait_for_deliveries(1, Duration::from_secs(60)), "the holder did not get going");
    run(&world, &metrics, &["save-location", "-q"]).exits(0).stderr_contains("holds the lock");
    let samples = samples(&metrics);
    assert_eq!(sample(&samples, "wolley_push_last_run_exit_code{wolley_job=save-location}"), 0.0);
    assert!(
        !samples.contains_key("wolley_push_last_success_timestamp_seconds{wolley_job=save-location}"),
        "{samples:#?}"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn the_last_run_s_devices_are_counted_by_how_they_are_addressed() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("alive-token:APA91bAlive")), (2, Some("cR_8eKx2Q-2mP0aBcDeF9z"))]);
    let metrics = metrics_path(&world);
    run(&world, &metrics, &["save-location", "-q"]).exits(0);
    let samples = samples(&metrics);
    assert_eq!(sample(&samples, "wolley_push_last_run_targets{wolley_job=save-location,target=token}"), 1.0);
    assert_eq!(sample(&samples, "wolley_push_last_run_targets{wolley_job=save-location,target=fid}"), 1.0);
}

#[test]
fn a_slot_already_done_counts_as_a_success() {
    let world = World::new().with_db();
    world.db().add_users(&[(1, Some("alive-token:APA91bAlive"))]);
    let first = world.file("first.prom", "");
    run(&world, &first, &["save-location", "-q"]).exits(0);
    let metrics = metrics_path(&world);
    run(&world, &metrics, &["save-location", "-q"]).exits(0);
    let samples = samples(&metrics);
    assert!(
        samples.contains_key("wolley_push_last_success_timestamp_seconds{wolley_job=save-location}"),
        "{samples:#?}"
    );
    assert_eq!(sample(&samples, "wolley_push_last_run_messages{wolley_job=save-location,result=sent}"), 0.0);
}

#[test]
fn sharded_runs_keep_a_series_per_shard() {
    let world = World::new().with_db();
    world.db().add_numbered_users(4);
    let metrics = metrics_path(&world);
    for shard in ["0/2", "1/2"] {
        run(&world, &metrics, &["save-location", "-q", "--shard", shard]).exits(0);
    }
    let samples = samples(&metrics);
    for shard in ["0/2", "1/2"] {
        let key =
            format!("wolley_push_last_run_messages{{wolley_job=save-location,result=sent,shard={shard}}}");
        assert_eq!(sample(&samples, &key), 2.0);
    }
}

#[test]
fn an_unwritable_metrics_file_is_a_warning_not_a_failure() {
    let world = World::new();
    let tokens = world.file("tokens.txt", "token-a:APA91bAAAA\n");
    world
        .cmd()
        .args(["save-location", "--print", "--tokens-file"])
        .arg(&tokens)
        .args(["--metrics-file", "/nonexistent-dir/wolley-push.prom"])
        .ran()
        .exits(0)
        .stderr_contains("cannot update the metrics file");
}

#[test]
fn doctor_writes_no_metrics() {
    let world = World::new();
    let metrics = metrics_path(&world);
    let _ = world.cmd().arg("doctor").arg("--metrics-file").arg(&metrics).ran();
    assert!(!metrics.exists());
}
