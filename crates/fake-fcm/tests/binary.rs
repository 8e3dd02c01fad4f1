//! The `fake-fcm` binary: flags, the key file, the endpoint line and the exit summary.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[cfg(unix)]
#[test]
fn binary_writes_the_key_prints_the_endpoint_and_reports_on_sigterm() {
    let key_path = std::env::temp_dir().join(format!("fake-fcm-key-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-fcm"))
        .args(["--project", "bench", "--latency-ms", "1", "--no-record", "--write-key"])
        .arg(&key_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let endpoint = line.trim().strip_prefix("endpoint=http://127.0.0.1:").unwrap_or_default();
    assert!(endpoint.parse::<u16>().is_ok(), "{line:?}");

    let key: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    std::fs::remove_file(&key_path).unwrap();
    assert_eq!(key["project_id"], "bench");
    assert_eq!(key["token_uri"], format!("http://127.0.0.1:{endpoint}/token"));

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(stderr.trim(), "deliveries=0 requests=0");
}

#[test]
fn binary_rejects_an_unknown_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-fcm")).arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--bogus"));
}
