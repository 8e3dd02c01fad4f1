//! The `wolley-push` binary: parse, log, run, exit with the code docs/product.md promises.

use clap::Parser;
use mimalloc::MiMalloc;
use wolley_push::{cli::Cli, exit::ExitCode, output};

// Many small, short-lived allocations per message (HTTP/2 frames, headers, bodies) across two
// threads: mimalloc spends markedly less CPU per message than glibc's allocator (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.global.quiet, cli.global.verbose);
    match wolley_push::run(cli).await {
        Ok(code) => code.into(),
        Err(error) => {
            eprintln!("wolley-push: error: {error}");
            let code = error.exit_code();
            if code == ExitCode::Software {
                eprintln!("wolley-push: this looks like a bug; please report it with the command you ran");
            }
            code.into()
        }
    }
}
