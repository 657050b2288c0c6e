//! `Splio` and `validateReward`.

use crate::convert::{self, apply_transport, Options, TransportOpts};
use crate::errors::{self, to_napi};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use rewardkit::splio::{validate_reward_value, Splio};
use serde_json::Value;

/// The Splio client. It owns the core client (one connection pool, one cached token); the
/// API key stays in native memory.
#[napi(js_name = "Splio")]
pub struct SplioClient {
    inner: Splio,
}

#[napi]
impl SplioClient {
    /// `options`: JSON of `{apiKey, baseUrl, timeout, connectTimeout, maxRetries, backoff,
    /// maxRetryWait, rateLimit}` (durations in milliseconds).
    #[napi(constructor)]
    pub fn new(options: String) -> napi::Result<Self> {
        crate::init_logging();
        let mut o = Options::parse("Splio", &options)?;
        let api_key = o.string("apiKey")?;
        let base_url = o.string("baseUrl")?;
        let transport = TransportOpts::read(&mut o)?;
        o.finish()?;

        let mut b = Splio::builder();
        if let Some(k) = api_key {
            b = b.api_key(k);
        }
        if let Some(url) = base_url {
            b = b.base_url(url);
        }
        let b = apply_transport!(b, transport);
        Ok(SplioClient { inner: b.build().map_err(to_napi)? })
    }

    /// The base URL requests go to.
    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.inner.base_url()
    }

    /// Creates a reward (validated first). `reward`: JSON of the reward, camelCase or snake_case.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn create_reward<'env>(&self, env: &'env Env, reward: String) -> napi::Result<PromiseRaw<'env, Value>> {
        let sp = self.inner.clone();
        env.spawn_future(async move {
            let payload = convert::reward_input(convert::parse(&reward)?);
            let created = sp.create_reward_value(&payload).await.map_err(to_napi)?;
            Ok(convert::reward_output(&created))
        })
    }

    /// Reads one reward by its external id.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn get_reward<'env>(&self, env: &'env Env, external_id: String) -> napi::Result<PromiseRaw<'env, Value>> {
        let sp = self.inner.clone();
        env.spawn_future(async move {
            let reward = sp.get_reward(&external_id).await.map_err(to_napi)?;
            Ok(convert::reward_output(&reward))
        })
    }
}

/// Every field error of a reward (`{key, code, description}`, keys as Splio names them),
/// without sending anything; empty when the reward is valid. `reward`: JSON, camelCase or
/// snake_case.
#[napi]
pub fn validate_reward(reward: String) -> napi::Result<Value> {
    let payload = convert::reward_input(convert::parse(&reward)?);
    Ok(Value::Array(validate_reward_value(&payload).iter().map(errors::field_error).collect()))
}
