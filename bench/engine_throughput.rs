//! The bulk engine alone, without a binding: 100,000 rows (batch 500, 8 in flight, pacing off)
//! against the sandbox in this process. Run:
//! `cargo run --release --features sandbox --example bench_engine [ROWS] [ROUNDS]`.

use rewardkit::bulk::{BulkOptions, VecSource};
use rewardkit::questionpro::{PointsAward, QuestionPro};
use rewardkit::sandbox::Sandbox;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rounds: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let sb = Sandbox::start().await?;
    let qp = QuestionPro::builder().api_key(sb.questionpro_api_key()).base_url(sb.url()).rate_limit(None).build()?;
    let rows: Vec<PointsAward> = (0..n).map(|i| PointsAward::new(1 + i as i64, 1).with_comments("bench")).collect();
    let mut times = Vec::new();
    for _ in 0..rounds {
        sb.reset();
        let opts = BulkOptions { batch_size: 500, concurrency: 8, ..BulkOptions::default() };
        let t = Instant::now();
        let report = qp.bulk_award(VecSource::new(rows.clone()), opts).await?;
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(report.totals.awarded, n);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{n} rows, batch 500, 8 in flight: median {:.1} ms = {:.0} rows/s (runs {:?})",
        median * 1e3,
        n as f64 / median,
        times
    );
    Ok(())
}
