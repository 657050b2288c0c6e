//! rewardkit: award points to QuestionPro panel members and create Splio Loyalty rewards,
//! safely.
//!
//! - Bad input is caught before the network, all of it at once ([`FieldError`]s in the
//!   vendor's own keys and codes).
//! - A points request is re-sent only when it provably never reached the server or the server
//!   refused it before processing (429, 503). When it was sent and no definitive answer came,
//!   the call fails with [`Error::OutcomeUnknown`] instead of risking a double award.
//! - Both vendors' error bodies become one [`Error`] type whose variants match the exception
//!   classes of the Python and Node packages.
//! - With the `sandbox` feature, [`sandbox::Sandbox`] serves both APIs on 127.0.0.1 for tests
//!   and demos.
//!
//! ```no_run
//! use rewardkit::questionpro::{PointsAward, QuestionPro};
//! use rewardkit::splio::{NewReward, Splio};
//! use rewardkit::Error;
//!
//! # async fn run() -> Result<(), Error> {
//! let qp = QuestionPro::from_env()?; // QUESTIONPRO_API_KEY, datacenter `com`
//! let result = qp.award_points(&[PointsAward::new(12345678, 100).with_comments("Thanks")]).await?;
//! println!("{} awarded, {} skipped, request {:?}", result.success_count, result.skipped.len(), result.request_id);
//!
//! let splio = Splio::from_env()?; // SPLIO_API_KEY
//! let mut reward = NewReward::new("gift-card-10", "Gift card", 0, 500);
//! reward.auto_generated = Some(true);
//! match splio.create_reward(&reward).await {
//!     Ok(created) => println!("created {}", created.external_id),
//!     Err(Error::Validation(errors)) => errors.iter().for_each(|e| eprintln!("{e}")),
//!     Err(Error::OutcomeUnknown(u)) => eprintln!("may or may not exist: {}", u.message),
//!     Err(other) => return Err(other),
//! }
//! # Ok(())
//! # }
//! ```

pub mod bulk;
pub mod error;
pub mod questionpro;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod splio;
pub mod transport;

pub use error::{ApiError, Error, FieldError, OutcomeUnknown, Result, UnknownCause, Vendor};
pub use transport::{RateLimit, TransportOptions};
