//! `rewardkit sandbox`: serve both APIs on 127.0.0.1 until Ctrl-C or SIGTERM.

use crate::output::{self, out, out_json};
use crate::SandboxArgs;
use rewardkit::sandbox::{Sandbox, SandboxConfig};
use rewardkit::RateLimit;
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(args: SandboxArgs) -> ExitCode {
    let mut config = SandboxConfig { addr: args.addr, ..SandboxConfig::default() };
    if let Some(ttl) = args.token_ttl {
        config.token_ttl = Duration::from_secs(ttl);
    }
    if args.rate_limits {
        config.questionpro_rate_limit = Some(RateLimit::QUESTIONPRO);
        config.splio_rate_limit = Some(RateLimit::SPLIO);
    }
    let sb = match Sandbox::start_with(config).await {
        Ok(sb) => sb,
        Err(e) => return output::report_error(&e, args.json),
    };
    let url = sb.url();
    if args.json {
        out_json(&json!({
            "url": url,
            "questionpro_api_key": sb.questionpro_api_key(),
            "splio_api_key": sb.splio_api_key(),
        }));
    } else {
        out(format!("rewardkit sandbox listening on {url}"));
        out("");
        out("Use it from another terminal:");
        out(format!("  export QUESTIONPRO_API_KEY={}", sb.questionpro_api_key()));
        out(format!("  export SPLIO_API_KEY={}", sb.splio_api_key()));
        out(format!("  rewardkit questionpro award-points examples/points.csv --base-url {url}"));
        out(format!("  rewardkit splio create-reward examples/reward.json --base-url {url}"));
        out(format!("  curl -s {url}/_sandbox/ledger"));
        out("");
        out(format!(
            "Members 1..=99999999 exist; larger ids are skipped. Rate limits: {}.",
            if args.rate_limits { "on (vendor-like)" } else { "off" }
        ));
        out("Press Ctrl-C to stop.");
    }
    // Whoever reads the first line (a script, a test) must see it now, not at exit.
    let _ = std::io::stdout().flush();

    crate::stop_signal().await;
    if !args.json {
        output::err("stopping the sandbox...");
    }
    sb.shutdown().await;
    ExitCode::SUCCESS
}
