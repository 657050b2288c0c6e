//! Splio Loyalty: create and read rewards. The client authenticates itself, caches the token,
//! renews it before it expires, and re-authenticates once when a call answers 401.

mod model;
pub mod validate;

pub use model::{CustomField, MonetaryType, NewReward, Reward, ValidityIntervalType};
pub use validate::validate_reward_value;

use crate::error::{ApiError, Error, UnknownCause, Vendor};
use crate::transport::{self, Answer, Safety, Transport, TransportOptions};
use base64::Engine;
use reqwest::Method;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// The environment variable the API key is read from when none is given.
pub const API_KEY_ENV: &str = "SPLIO_API_KEY";
/// Splio's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.splio.com";
/// Token lifetime assumed when the token carries no `exp` claim.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

struct Token {
    value: String,
    renew_at: Instant,
}

struct Inner {
    transport: Transport,
    api_key: String,
    // An async mutex held across the authentication call: concurrent callers wait for the
    // one authentication in flight instead of each starting their own.
    token: tokio::sync::Mutex<Option<Token>>,
}

/// The Splio client. Cheap to clone; clones share the token and the connection pool.
#[derive(Clone)]
pub struct Splio {
    inner: Arc<Inner>,
}

impl fmt::Debug for Splio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Splio")
            .field("base_url", &self.inner.transport.url("").as_str())
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Builds a [`Splio`] client.
#[derive(Clone, Default)]
pub struct SplioBuilder {
    api_key: Option<String>,
    base_url: Option<String>,
    opts: Option<TransportOptions>,
}

impl fmt::Debug for SplioBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplioBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl SplioBuilder {
    transport::builder_setters!(TransportOptions::splio);

    /// The API key; without it, `SPLIO_API_KEY` is read.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
    /// Another base URL (a proxy, the sandbox). Default `https://api.splio.com`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }
    /// Builds the client. Fails when no key is given or found, or the base URL is not allowed.
    pub fn build(self) -> Result<Splio, Error> {
        let api_key = match self.api_key.filter(|k| !k.trim().is_empty()) {
            Some(k) => k,
            None => std::env::var(API_KEY_ENV)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| Error::Config(format!("no Splio API key: pass one or set {API_KEY_ENV}")))?,
        };
        let base = transport::check_base_url(self.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        let opts = self.opts.unwrap_or_else(TransportOptions::splio);
        // Splio limits per client IP, so every key shares one pacer per host.
        let transport = Transport::new(Vendor::Splio, base, opts, "ip")?;
        Ok(Splio { inner: Arc::new(Inner { transport, api_key, token: tokio::sync::Mutex::new(None) }) })
    }
}

impl Splio {
    /// A builder; see its methods for every option.
    pub fn builder() -> SplioBuilder {
        SplioBuilder::default()
    }

    /// A client with this key.
    pub fn new(api_key: impl Into<String>) -> Result<Self, Error> {
        Self::builder().api_key(api_key).build()
    }

    /// A client with the key from `SPLIO_API_KEY`.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> String {
        self.inner.transport.url("").to_string()
    }

    /// Creates a reward. It is validated first; nothing is sent if it breaks a rule.
    pub async fn create_reward(&self, reward: &NewReward) -> Result<Reward, Error> {
        self.create_reward_value(&reward.to_value()).await
    }

    /// [`Splio::create_reward`] for an untyped payload (what the bindings and the CLI read).
    pub async fn create_reward_value(&self, payload: &Value) -> Result<Reward, Error> {
        let errs = validate_reward_value(payload);
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let body = serde_json::to_vec(&validate::wire_payload(payload))
            .map_err(|e| Error::Config(format!("could not encode the reward: {e}")))?;
        let ans = self.call(Method::POST, "loyalty/v1/rewards", Safety::Unsafe, Some(body)).await?;
        if !ans.status.is_success() {
            return Err(ans.into_error(Vendor::Splio));
        }
        serde_json::from_slice::<Reward>(&ans.body).map_err(|e| {
            transport::unknown(
                UnknownCause::UnreadableBody,
                format!(
                    "Splio answered {} but the reward could not be read ({e}); look it up with get_reward",
                    ans.status.as_u16()
                ),
                Some(&ans),
            )
        })
    }

    /// Reads one reward by its external id.
    pub async fn get_reward(&self, external_id: &str) -> Result<Reward, Error> {
        if external_id.trim().is_empty() {
            return Err(Error::Validation(vec![crate::FieldError::new(
                "external_id",
                "is_blank",
                "This value should not be blank.",
            )]));
        }
        let path = format!("loyalty/v1/rewards/{}", encode_segment(external_id));
        let ans = self.call(Method::GET, &path, Safety::Safe, None).await?;
        if !ans.status.is_success() {
            return Err(ans.into_error(Vendor::Splio));
        }
        serde_json::from_slice::<Reward>(&ans.body).map_err(|e| {
            let mut api = ApiError::parse(Vendor::Splio, ans.status.as_u16(), &ans.headers, &ans.body);
            api.message = format!("Splio answered {} with a reward that could not be read: {e}", ans.status.as_u16());
            Error::Api(Box::new(api))
        })
    }

    /// Sends an authenticated call; on 401 it re-authenticates once and repeats it (a 401
    /// means the call was not processed, so repeating it is safe).
    async fn call(&self, method: Method, path: &str, safety: Safety, body: Option<Vec<u8>>) -> Result<Answer, Error> {
        let mut token = self.token(None).await?;
        for first in [true, false] {
            let ans = self
                .inner
                .transport
                .send(method.clone(), path, safety, |r| {
                    let r = r.bearer_auth(&token).header("accept", "application/json");
                    match &body {
                        Some(b) => r.header("content-type", "application/json").body(b.clone()),
                        None => r,
                    }
                })
                .await?;
            if ans.status.as_u16() == 401 && first {
                tracing::debug!(target: "rewardkit", "Splio answered 401: authenticating again");
                token = self.token(Some(&token)).await?;
                continue;
            }
            return Ok(ans);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// A valid token: the cached one unless it is due for renewal or is `stale` (it was just
    /// refused), in which case one authentication is made for all waiting callers.
    async fn token(&self, stale: Option<&str>) -> Result<String, Error> {
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref() {
            let refused = stale == Some(t.value.as_str());
            if !refused && Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.authenticate().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    async fn authenticate(&self) -> Result<Token, Error> {
        let body = serde_json::to_vec(&serde_json::json!({ "api_key": self.inner.api_key }))
            .map_err(|e| Error::Config(e.to_string()))?;
        let ans = self
            .inner
            .transport
            .send(Method::POST, "authenticate", Safety::Safe, |r| {
                r.header("content-type", "application/json").header("accept", "application/json").body(body.clone())
            })
            .await?;
        let status = ans.status.as_u16();
        if !ans.status.is_success() {
            let e = ApiError::parse(Vendor::Splio, status, &ans.headers, &ans.body);
            // Splio refuses a bad key with 400 (not 401): it is still an authentication failure.
            return Err(if matches!(status, 400 | 401 | 403) {
                Error::Authentication(Box::new(e))
            } else {
                Error::from_api(e)
            });
        }
        let token = serde_json::from_slice::<Value>(&ans.body)
            .ok()
            .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                let mut e = ApiError::parse(Vendor::Splio, status, &ans.headers, b"");
                e.message = "Splio's authentication answer holds no token".into();
                Error::Authentication(Box::new(e))
            })?;
        let lifetime = token_lifetime(&token).unwrap_or(DEFAULT_TOKEN_LIFETIME);
        // Renew ahead of expiry: a tenth of the lifetime early, at most a minute.
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        Ok(Token { value: token, renew_at: Instant::now() + lifetime.saturating_sub(margin) })
    }
}

/// Time left before the JWT's `exp` claim, when the token is a JWT that has one.
fn token_lifetime(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims = serde_json::from_slice::<Value>(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    // exp - iat is immune to a skewed local clock; the local clock is the fallback.
    let start = match claims.get("iat").and_then(Value::as_f64) {
        Some(iat) if iat < exp => iat,
        _ => SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs_f64(),
    };
    Some(Duration::from_secs_f64((exp - start).clamp(0.0, 30.0 * 86_400.0)))
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exp_from_a_jwt() {
        let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"exp\":{exp}}}"));
        let life = token_lifetime(&format!("h.{payload}.s")).unwrap();
        assert!(life > Duration::from_secs(590) && life <= Duration::from_secs(600));
        assert_eq!(token_lifetime("not-a-jwt"), None);
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
    }
}
