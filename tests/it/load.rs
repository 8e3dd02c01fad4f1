//! Load of the tests' own, for the promises that must hold on a starved machine: busy loops on
//! every core and a disk kept writing back, bounded in time and stopped when dropped.

use std::io::{Seek, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the disk hog writes between two syncs.
const DISK_CHUNK: usize = 4 << 20;
/// The disk hog's file never grows past this: it starts over.
const DISK_FILE_MAX: u64 = 128 << 20;

/// Busy CPUs and a busy disk until dropped, or until `limit` has passed.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Load {
    /// One busy loop per core and one writer that syncs every few MiB, for at most `limit`.
    pub fn start(limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let until = Instant::now() + limit;
        let dir = tempfile::tempdir().unwrap();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut threads: Vec<JoinHandle<()>> = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        for _ in 0..100_000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                })
            })
            .collect();
        let path = dir.path().join("writeback");
        let writer_stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut file = std::fs::File::create(&path).unwrap();
            let chunk = vec![0x5au8; DISK_CHUNK];
            while !writer_stop.load(Ordering::Relaxed) && Instant::now() < until {
                if file.stream_position().unwrap() >= DISK_FILE_MAX {
                    file.set_len(0).unwrap();
                    file.rewind().unwrap();
                }
                file.write_all(&chunk).unwrap();
                file.sync_data().unwrap();
            }
        }));
        Load { stop, threads, _dir: dir }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
