//! `fake-fcm`: runs the fake FCM server on its own, for benchmarks and manual runs.
//!
//! Exists so that a benchmark script (or a person) can point wolley-push at a fake FCM without
//! writing Rust: it writes the service-account key, prints `endpoint=...`, serves until
//! SIGTERM or Ctrl-C, then prints `deliveries=N requests=N` to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use fake_fcm::{FakeFcm, Options};

// The benchmarks share two cores between the fake and wolley-push: with glibc's allocator a
// quarter of the fake's CPU was malloc and free, so the fake, not the client, set the pace.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: fake-fcm [--latency-ms N] [--project ID] [--max-streams N] \
[--fail-503-ratio F] [--workers N] [--expires-in SECS] [--no-record] [--write-key PATH] \
[--tls --write-ca PATH]";

/// The parsed command line.
#[derive(Default)]
struct Args {
    options: Options,
    write_key: Option<PathBuf>,
    write_ca: Option<PathBuf>,
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "-h" || arg == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("fake-fcm: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fake = FakeFcm::start(args.options);
    if let Some(path) = &args.write_key {
        if let Err(error) = std::fs::write(path, fake.service_account_json()) {
            eprintln!("fake-fcm: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let (Some(path), Some(pem)) = (&args.write_ca, fake.ca_pem()) {
        if let Err(error) = std::fs::write(path, pem) {
            eprintln!("fake-fcm: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    announce_and_wait(&fake.endpoint());
    eprintln!("deliveries={} requests={}", fake.total_deliveries(), fake.total_requests());
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    while let Some(flag) = args.next() {
        let options = &mut parsed.options;
        match flag.as_str() {
            "--latency-ms" => options.latency = Duration::from_millis(value(&mut args, &flag)?),
            "--project" => options.project_id = value(&mut args, &flag)?,
            "--max-streams" => options.max_concurrent_streams = value(&mut args, &flag)?,
            "--fail-503-ratio" => options.transient_503_ratio = value(&mut args, &flag)?,
            "--workers" => options.workers = value(&mut args, &flag)?,
            "--expires-in" => options.access_token_expires_in = value(&mut args, &flag)?,
            "--no-record" => options.record_bodies = false,
            "--write-key" => parsed.write_key = Some(value(&mut args, &flag)?),
            "--tls" => options.tls = true,
            "--write-ca" => parsed.write_ca = Some(value(&mut args, &flag)?),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(parsed)
}

/// The value after `flag`, parsed.
fn value<T: FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<T, String> {
    let raw = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    raw.parse().map_err(|_| format!("{flag}: invalid value {raw:?}"))
}

/// Prints `endpoint=...` once SIGTERM and SIGINT are caught (so a signal sent as soon as
/// the line is read is not lost), then blocks until one of them arrives.
fn announce_and_wait(endpoint: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to wait for signals");
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
            let mut interrupt = signal(SignalKind::interrupt()).expect("a SIGINT handler");
            announce(endpoint);
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let interrupt = tokio::signal::ctrl_c();
            announce(endpoint);
            let _ = interrupt.await;
        }
    });
}

fn announce(endpoint: &str) {
    println!("endpoint={endpoint}");
    let _ = std::io::stdout().flush();
}
