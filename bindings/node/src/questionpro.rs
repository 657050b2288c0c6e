//! `QuestionPro` and `validateRows`.

use crate::bulk::{BulkAwardJob, ProgressFn};
use crate::convert::{self, apply_transport, Options, TransportOpts};
use crate::errors::{self, to_napi};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use rewardkit::questionpro::{rows_from_values, Datacenter, QuestionPro};
use serde_json::Value;

/// The QuestionPro client. It owns the core client (and so one HTTP connection pool); the API
/// key stays in native memory.
#[napi(js_name = "QuestionPro")]
pub struct QuestionProClient {
    inner: QuestionPro,
    /// The client's `allowDuplicates`, the default of its bulk jobs.
    allow_duplicates: bool,
}

#[napi]
impl QuestionProClient {
    /// `options`: JSON of `{apiKey, datacenter, baseUrl, timeout, connectTimeout, maxRetries,
    /// backoff, maxRetryWait, rateLimit, allowDuplicates}` (durations in milliseconds).
    #[napi(constructor)]
    pub fn new(options: String) -> napi::Result<Self> {
        crate::init_logging();
        let mut o = Options::parse("QuestionPro", &options)?;
        let api_key = o.string("apiKey")?;
        let datacenter = o.string("datacenter")?;
        let base_url = o.string("baseUrl")?;
        let allow_duplicates = o.bool("allowDuplicates")?;
        let transport = TransportOpts::read(&mut o)?;
        o.finish()?;

        let mut b = QuestionPro::builder();
        if let Some(k) = api_key {
            b = b.api_key(k);
        }
        if let Some(dc) = datacenter {
            b = b.datacenter(dc.parse::<Datacenter>().map_err(to_napi)?);
        }
        if let Some(url) = base_url {
            b = b.base_url(url);
        }
        if let Some(yes) = allow_duplicates {
            b = b.allow_duplicates(yes);
        }
        let b = apply_transport!(b, transport);
        Ok(QuestionProClient {
            inner: b.build().map_err(to_napi)?,
            allow_duplicates: allow_duplicates.unwrap_or(false),
        })
    }

    /// The base URL requests go to.
    #[napi(getter)]
    pub fn base_url(&self) -> String {
        self.inner.base_url()
    }

    /// Sends one points request. `rows`: JSON of an array of row objects.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn award_points<'env>(&self, env: &'env Env, rows: String) -> napi::Result<PromiseRaw<'env, Value>> {
        // Taken before the promise: the future must not touch `self`, which a terminated
        // worker frees while the request is in flight (see `lib.rs`).
        let qp = self.inner.clone();
        env.spawn_future(async move {
            let rows = match convert::parse(&rows)? {
                Value::Array(rows) => rows,
                _ => return Err(errors::config("awardPoints takes an array of rows")),
            };
            let result = qp.award_points_values(&rows).await.map_err(to_napi)?;
            Ok(convert::award_result(&result))
        })
    }

    /// A bulk job on this client, not started (see `bulk.rs`). `options`: JSON of
    /// `{batchSize, concurrency, onInvalid, allowDuplicates, journal, resendUnknown}`;
    /// `rowsTotal`: the number of rows when known; `onProgress` is called after each chunk.
    #[napi]
    pub fn bulk_job(
        &self,
        options: String,
        rows_total: Option<u32>,
        on_progress: Option<ProgressFn>,
    ) -> napi::Result<BulkAwardJob> {
        BulkAwardJob::new(&self.inner, &options, self.allow_duplicates, rows_total, on_progress)
    }
}

/// Every problem of every row (`{key, code, description, row}`), without sending anything;
/// empty when all rows are good.
#[napi]
pub fn validate_rows(rows: String, allow_duplicates: bool) -> napi::Result<Value> {
    let rows = match convert::parse(&rows)? {
        Value::Array(rows) => rows,
        _ => return Err(errors::config("validateRows takes an array of rows")),
    };
    let errs = rows_from_values(&rows, allow_duplicates).err().unwrap_or_default();
    Ok(Value::Array(errs.iter().map(errors::field_error).collect()))
}
