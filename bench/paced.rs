//! The paced run of bench/README.md: a bulk job with rewardkit's default pacing against the
//! sandbox's vendor-like rate limit (QuestionPro: 300 calls per 60 s per key). It reports the
//! calls per minute achieved, as a share of the limit, and how many requests the sandbox
//! refused with 429. Run: `cargo run --release --features sandbox --example bench_paced [SECONDS]`.

use rewardkit::bulk::{BulkOptions, VecSource};
use rewardkit::questionpro::{PointsAward, QuestionPro};
use rewardkit::sandbox::{Route, Sandbox, SandboxConfig};
use rewardkit::RateLimit;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(75);
    let limit = RateLimit::QUESTIONPRO;
    let cfg = SandboxConfig { questionpro_rate_limit: Some(limit), ..SandboxConfig::default() };
    let sb = Sandbox::start_with(cfg).await?;
    // Default pacing (the vendor's published limit); no pacing override.
    let qp = QuestionPro::builder().api_key(sb.questionpro_api_key()).base_url(sb.url()).build()?;
    let calls = (seconds as f64 * f64::from(limit.calls) / limit.per.as_secs_f64()) as usize;
    let batch = 100;
    let rows: Vec<PointsAward> = (0..calls * batch).map(|i| PointsAward::new(1 + i as i64, 1)).collect();
    let opts = BulkOptions { batch_size: batch, concurrency: 8, ..BulkOptions::default() };
    println!("paced run: {calls} calls of {batch} rows, limit {} per {:?}, concurrency 8", limit.calls, limit.per);
    let started = Instant::now();
    let report = qp.bulk_award(VecSource::new(rows), opts).await?;
    let elapsed = started.elapsed();
    let received = sb.request_count(Route::QuestionproPoints) as usize;
    let refused = received - report.requests;
    // n calls evenly spaced span n-1 intervals: measure the rate over the intervals.
    let per_minute = (report.requests.saturating_sub(1)) as f64 / elapsed.as_secs_f64() * 60.0;
    let allowed = f64::from(limit.calls) * Duration::from_secs(60).as_secs_f64() / limit.per.as_secs_f64();
    println!("elapsed            {:.1} s", elapsed.as_secs_f64());
    println!("requests           {} (all awarded: {})", report.requests, report.is_complete());
    println!("calls per minute   {per_minute:.1} of {allowed:.0} allowed = {:.1}%", per_minute / allowed * 100.0);
    println!("429 answers        {refused}");
    Ok(())
}
