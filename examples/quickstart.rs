//! The Rust API in one file, run against the offline sandbox:
//!
//!     cargo run --example quickstart
//!
//! Against the real APIs, drop the sandbox and `base_url`: the clients read
//! `QUESTIONPRO_API_KEY` and `SPLIO_API_KEY`, and QuestionPro takes a datacenter.

use rewardkit::bulk::{award_sequential, Outcome};
use rewardkit::questionpro::{validate_rows, PointsAward, QuestionPro};
use rewardkit::sandbox::Sandbox;
use rewardkit::splio::{NewReward, Splio};
use rewardkit::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start().await?;

    // QuestionPro: one request.
    let qp = QuestionPro::builder()
        .api_key(sandbox.questionpro_api_key())
        .base_url(sandbox.url()) // or .datacenter(Datacenter::Eu)
        .build()?;
    let result = qp
        .award_points(&[
            PointsAward::new(12345678, 100).with_comments("Thanks for the survey"),
            PointsAward::new(987654321012, 100), // not in the sandbox's panel: skipped
        ])
        .await?;
    println!("awarded {}, skipped {}, request id {:?}", result.success_count, result.skipped.len(), result.request_id);

    // Bad rows never reach the network: every problem of every row comes back at once.
    match qp.award_points(&[PointsAward::new(-1, 10), PointsAward::new(7, 0)]).await {
        Err(Error::Validation(errors)) => {
            for e in &errors {
                println!("invalid: {e}"); // e.g. "row 1: points: wrong_value (...)"
            }
        }
        other => println!("unexpected: {other:?}"),
    }

    // Many rows: validate them all, then send in batches; every row gets one outcome.
    let rows: Vec<PointsAward> = (1..=1200).map(|id| PointsAward::new(id, 10)).collect();
    assert!(validate_rows(&rows, false).is_empty());
    let report = award_sequential(&qp, &rows, 500, |batch| println!("batch of {} rows done", batch.len())).await;
    let totals = report.totals();
    println!("{} awarded ({} points), {} unknown", totals.awarded, totals.points_awarded, totals.unknown);
    for row in report.rows.iter().filter(|r| r.outcome == Outcome::Unknown) {
        println!("row {} may or may not have been awarded: check before resending", row.row);
    }

    // Splio: the client authenticates and renews its token by itself.
    let splio = Splio::builder().api_key(sandbox.splio_api_key()).base_url(sandbox.url()).build()?;
    let mut reward = NewReward::new("welcome-gift", "Welcome gift", 0, 500);
    reward.limited = Some(true);
    reward.auto_generated = Some(true);
    reward.max_attribution_count = Some(100);
    assert!(reward.validate().is_empty());
    let created = splio.create_reward(&reward).await?;
    println!("created reward {} ({:?})", created.external_id, created.extra.get("id"));

    // The vendor's errors come back typed, with status, request id and field errors.
    if let Err(e) = splio.create_reward(&reward).await {
        println!("{} (status {:?}): {e}", e.class_name(), e.status());
        for f in e.field_errors() {
            println!("  {}: {}", f.key, f.code); // external_id: wrong_value
        }
    }

    println!("sandbox ledger: {} members credited", sandbox.ledger().len());
    sandbox.shutdown().await;
    Ok(())
}
