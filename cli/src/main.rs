//! `rewardkit`: award QuestionPro panel points in bulk, create and validate Splio Loyalty
//! rewards, and run the offline sandbox.
//!
//! Exit codes: 0 success; 1 a validation, API or I/O failure (or a points job in which some row
//! was not awarded or skipped); 2 a usage error; 130 a points job stopped by Ctrl-C or SIGTERM.

mod input;
mod output;
mod points;
mod progress;
mod reward;
mod sandbox;
mod source;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use rewardkit::questionpro::Datacenter;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "rewardkit",
    version,
    about = "Award QuestionPro panel points in bulk and create Splio Loyalty rewards, safely.",
    long_about = "Award QuestionPro panel points in bulk and create Splio Loyalty rewards, safely.\n\n\
        Every input row is validated before anything is sent; a points request is re-sent only \
        when it provably was not processed, and rows whose fate is not known are reported as \
        unknown. `rewardkit sandbox` serves both APIs offline.",
    propagate_version = true
)]
struct Cli {
    /// Log rewardkit's requests on stderr (-v: debug). RUST_LOG takes the usual filters.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve both APIs offline on 127.0.0.1 (prints the URL and the sandbox credentials).
    Sandbox(SandboxArgs),
    /// QuestionPro panels.
    #[command(subcommand)]
    Questionpro(QuestionProCommand),
    /// Splio Loyalty.
    #[command(subcommand)]
    Splio(SplioCommand),
}

#[derive(Subcommand, Debug)]
enum QuestionProCommand {
    /// Award (or deduct) points to panel members from a CSV, JSON or JSON-lines file.
    ///
    /// The file is streamed: every row is validated first (with --on-invalid stop, the default,
    /// any bad row means every bad line is listed and nothing is sent), then the rows are sent
    /// in batches, several at a time. With --journal, a job that was stopped or killed resumes
    /// when the same command is run again: confirmed batches are not sent twice. Exits 0 only
    /// when every row was awarded or skipped by QuestionPro; 130 when stopped by Ctrl-C (press it
    /// twice to stop without waiting for the requests in flight).
    AwardPoints(AwardArgs),
}

#[derive(Subcommand, Debug)]
enum SplioCommand {
    /// Create a reward from a JSON file (validated first; nothing is sent if it is invalid).
    CreateReward(CreateArgs),
    /// Check a reward JSON file against Splio's rules without sending anything (exit 1 when invalid).
    ValidateReward(ValidateArgs),
}

#[derive(Args, Debug)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Lifetime of the Splio tokens the sandbox issues, in seconds.
    #[arg(long, value_name = "SECS")]
    token_ttl: Option<u64>,
    /// Enforce the vendors' published rate limits (QuestionPro 300 calls/60 s, Splio 10/s).
    #[arg(long)]
    rate_limits: bool,
    /// Print the URL and credentials as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct AwardArgs {
    /// Rows to award: CSV (header panelMemberID,points,comments), a JSON array, or JSON lines; `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: String,
    /// QuestionPro datacenter: com, eu, ca, au, ae or sg.
    #[arg(long, value_name = "DC", value_parser = parse_datacenter, conflicts_with = "base_url")]
    datacenter: Option<Datacenter>,
    /// Full base URL instead of a datacenter (another region's host, a proxy, the sandbox).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// QuestionPro API key.
    #[arg(long, value_name = "KEY", env = "QUESTIONPRO_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Rows per request.
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch_size: u64,
    /// Requests in flight at once (all paced together).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    concurrency: u64,
    /// What to do when some rows are invalid: `stop` lists every bad line and sends nothing;
    /// `send-valid` sends the valid rows and lists the bad ones.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = OnInvalidArg::Stop)]
    on_invalid: OnInvalidArg,
    /// Allow one panel member to appear on several rows (otherwise a repeat is an error).
    #[arg(long)]
    allow_duplicates: bool,
    /// Record each batch's state in this SQLite file, so that running the same command again
    /// resumes the job: confirmed batches are not sent again, unknown ones are listed.
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// With --journal: send again the batches an earlier run left unknown (they may have been
    /// awarded already: this can award them twice).
    #[arg(long, requires = "journal")]
    resend_unknown: bool,
    /// Limit for each request, in seconds (default 30).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<f64>,
    /// How many times a request may be re-sent when that is provably safe (default 3).
    #[arg(long, value_name = "N")]
    max_retries: Option<u32>,
    /// Do not pace requests to QuestionPro's published limit (300 calls per 60 s).
    #[arg(long)]
    no_pacing: bool,
    /// Write the rows that were rejected, failed (or not sent) or have an unknown outcome to this CSV file.
    #[arg(long, value_name = "PATH")]
    failed_csv: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `--on-invalid`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnInvalidArg {
    /// List every bad line and send nothing.
    Stop,
    /// Send the valid rows; list the bad ones.
    SendValid,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The reward, a JSON object with Splio's field names; `-` reads stdin.
    #[arg(value_name = "FILE.json")]
    file: String,
    /// Base URL instead of https://api.splio.com (a proxy, the sandbox).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Splio API key.
    #[arg(long, value_name = "KEY", env = "SPLIO_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Limit for each request, in seconds (default 30).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<f64>,
    /// Validate and print what would be sent; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The reward, a JSON object with Splio's field names; `-` reads stdin.
    #[arg(value_name = "FILE.json")]
    file: String,
    /// Print {"valid": bool, "errors": [...]}.
    #[arg(long)]
    json: bool,
}

fn parse_datacenter(s: &str) -> Result<Datacenter, String> {
    s.parse::<Datacenter>().map_err(|_| "expected one of com, eu, ca, au, ae, sg (or use --base-url)".to_string())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err("expected a number of seconds greater than 0".into()),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::builder()
        .with_default_directive(tracing_subscriber::filter::LevelFilter::WARN.into())
        .from_env_lossy();
    if verbose > 0 {
        let level = if verbose > 1 { "rewardkit=trace" } else { "rewardkit=debug" };
        if let Ok(d) = level.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| output::ScrubbedStderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}

/// Keys found in the environment are secrets whatever the command: they must never be printed.
fn register_env_secrets() {
    for var in [rewardkit::questionpro::API_KEY_ENV, rewardkit::splio::API_KEY_ENV] {
        if let Ok(v) = std::env::var(var) {
            output::add_secret(&v);
        }
    }
}

/// Returns on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Ctrl-C (SIGINT) and, on Unix, SIGTERM, listened to from the moment this is made (so a
/// signal that comes early is not the default, fatal one).
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// Returns at the next signal.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Questionpro(QuestionProCommand::AwardPoints(args)) => {
            register_env_secrets();
            points::run(args).await
        }
        Command::Splio(SplioCommand::CreateReward(args)) => {
            register_env_secrets();
            reward::create(args).await
        }
        Command::Splio(SplioCommand::ValidateReward(args)) => reward::validate(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
