//! The `weir` binary: parse the command line ([`cli`]), set up logging, run the command
//! ([`cmd`]), map errors to exit codes.

mod cli;
mod cmd;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging(cli.log_format);
    let result = match cli.command {
        Command::Check(args) => block_on(cmd::check::check(args)),
        Command::Tail(args) => block_on(cmd::tail::tail(args)),
        Command::Leases(args) => block_on(cmd::leases::leases(args)),
        Command::Deploy(args) => block_on(cmd::deploy::deploy(args)),
        Command::Operators(args) => block_on(cmd::deploy::operators(args)),
        Command::Shadow(args) => block_on(cmd::shadow::shadow(args)),
        Command::Keygen(args) => cmd::keygen::keygen(&args).map(|()| ExitCode::SUCCESS),
        Command::New(args) => cmd::new::new(args).map(|()| ExitCode::SUCCESS),
        // Input ended, or stopped by a signal with everything written: both are success.
        Command::Run(args) => cmd::run::run_blocking(*args).map(|_| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        // The reader of our output went away (`weir run | head`): a normal way to stop.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log to standard error at the level WEIR_LOG says (info by default): text, coloured only on
/// a terminal, or JSON lines.
fn logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

/// Run a command that ends with `Ok(())` on success.
fn block_on(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(command).map(|()| ExitCode::SUCCESS)
}
