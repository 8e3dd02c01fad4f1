//! The `wolley-push` binary: parse, log, run, exit with the code docs/product.md promises.

use std::panic::AssertUnwindSafe;

use clap::Parser;
use futures::FutureExt;
use mimalloc::MiMalloc;
use wolley_push::{cli::Cli, exit::ExitCode, output, panic_hook, runtime};

// Many small, short-lived allocations per message (HTTP/2 frames, headers, bodies): mimalloc
// spends less CPU on them than glibc's allocator and its arena locks. Built with `no_thp`:
// otherwise it asks for transparent huge pages, and every thread that allocates (the blocking
// pool's DNS lookups, one per connection) pins a whole huge page. See BENCHMARKS.md, "Why the
// code looks like this".
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    match runtime::build() {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            // Before any job: nothing ran, and a rerun may find the resources free.
            eprintln!("wolley-push: error: cannot start the async runtime: {error}; check the process's limits (ulimit -n, memory)");
            ExitCode::TempFail.into()
        }
    }
}

/// Parses, runs the job and maps how it ended to an exit code.
async fn run() -> std::process::ExitCode {
    panic_hook::install();
    let cli = Cli::parse();
    output::init_logging(cli.global.quiet, cli.global.verbose);
    // A panic (a worker's comes back here through its JoinError) unwinds into this catch rather
    // than out of `main`, which would exit 101. Exiting from the hook instead would skip the
    // unwinding: destructors, and code that handles a task's JoinError (e.g. marking the run's
    // journal row failed). A panic that was caught and survived still makes the exit status 1.
    let code = match AssertUnwindSafe(wolley_push::run(cli)).catch_unwind().await {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("wolley-push: error: {error}");
            if error.exit_code() == ExitCode::Software {
                eprintln!("wolley-push: this looks like a bug; please report it with the command you ran");
            }
            error.exit_code()
        }
        Err(_) => ExitCode::Software,
    };
    if panic_hook::happened() { ExitCode::Software } else { code }.into()
}
