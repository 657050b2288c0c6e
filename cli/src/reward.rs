//! `rewardkit splio create-reward` and `rewardkit splio validate-reward`.

use crate::output::{self, field_error_json, field_error_text, out, out_json};
use crate::{CreateArgs, ValidateArgs};
use rewardkit::splio::{validate_reward_value, Reward, Splio};
use rewardkit::{Error, FieldError};
use serde_json::{json, Value};
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

/// Why the reward file could not be had.
enum ReadError {
    /// The file could not be opened or read.
    Io(String),
    /// The file is not JSON.
    Syntax(FieldError),
}

fn read_json(path: &str) -> Result<Value, ReadError> {
    let mut text = Vec::new();
    let res = if path == "-" {
        std::io::stdin().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut text)).map(|_| ())
    };
    res.map_err(|e| ReadError::Io(format!("cannot read {}: {e}", if path == "-" { "standard input" } else { path })))?;
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&text);
    serde_json::from_slice(text).map_err(|e| {
        ReadError::Syntax(FieldError::new("reward", "invalid_json", format!("the file is not valid JSON: {e}")))
    })
}

/// The reward's field errors: the file's own when it is not JSON, else the validation's.
fn load(path: &str, json_mode: bool) -> Result<(Value, Vec<FieldError>), ExitCode> {
    match read_json(path) {
        Ok(v) => {
            let errs = validate_reward_value(&v);
            Ok((v, errs))
        }
        Err(ReadError::Io(msg)) => Err(output::report_failure(&msg, json_mode)),
        Err(ReadError::Syntax(e)) => Ok((Value::Null, vec![e])),
    }
}

pub fn validate(args: ValidateArgs) -> ExitCode {
    let (_, errs) = match load(&args.file, args.json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if args.json {
        let errors: Vec<Value> = errs.iter().map(|e| field_error_json(e, None, None)).collect();
        out_json(&json!({"valid": errs.is_empty(), "errors": errors}));
    } else if errs.is_empty() {
        out("valid");
    } else {
        for e in &errs {
            out(field_error_text(e));
        }
    }
    if errs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub async fn create(args: CreateArgs) -> ExitCode {
    let json_mode = args.json;
    if let Some(k) = &args.api_key {
        output::add_secret(k);
    }
    let (payload, errs) = match load(&args.file, json_mode) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if !errs.is_empty() {
        return output::report_error(&Error::Validation(errs), json_mode);
    }

    if args.dry_run {
        let payload = rewardkit::splio::validate::wire_payload(&payload);
        let base = args.base_url.as_deref().unwrap_or(rewardkit::splio::DEFAULT_BASE_URL);
        let target = format!("{}/loyalty/v1/rewards", base.trim_end_matches('/'));
        if json_mode {
            out_json(&json!({"ok": true, "dry_run": true, "valid": true, "url": target, "payload": payload}));
        } else {
            out(format!("valid. Dry run: nothing was sent. This reward would be sent to POST {target}:"));
            out(serde_json::to_string_pretty(&payload).unwrap_or_default());
        }
        return ExitCode::SUCCESS;
    }

    let mut builder = Splio::builder();
    if let Some(k) = &args.api_key {
        builder = builder.api_key(k.clone());
    }
    if let Some(url) = &args.base_url {
        builder = builder.base_url(url.clone());
    }
    if let Some(t) = args.timeout {
        builder = builder.timeout(Duration::from_secs_f64(t));
    }
    let splio = match builder.build() {
        Ok(s) => s,
        Err(e) => return output::report_error(&e, json_mode),
    };
    match splio.create_reward_value(&payload).await {
        Ok(reward) => {
            if json_mode {
                out_json(&json!({"ok": true, "reward": reward}));
            } else {
                print_reward(&reward);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = output::report_error(&e, json_mode);
            if !json_mode {
                if let Error::OutcomeUnknown(_) = e {
                    output::err(
                        "  the reward may or may not have been created: look it up by its external_id before creating it again",
                    );
                }
            }
            code
        }
    }
}

fn print_reward(r: &Reward) {
    out(format!("Created reward {:?} (external_id {:?})", r.name, r.external_id));
    if let Some(id) = r.extra.get("id") {
        out(format!("  id:                    {id}"));
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    out(format!("  nqp_value:             {}", opt(r.nqp_value.map(|v| v.to_string()))));
    out(format!("  holding_days:          {}", opt(r.holding_days.map(|v| v.to_string()))));
    out(format!("  limited:               {}", opt(r.limited.map(|v| v.to_string()))));
    out(format!("  auto_generated:        {}", opt(r.auto_generated.map(|v| v.to_string()))));
    if let Some(n) = r.max_attribution_count {
        out(format!("  max_attribution_count: {n}"));
    }
    if r.monetary == Some(true) {
        let kind = r.monetary_type.map(|t| format!("{t:?}").to_lowercase()).unwrap_or_default();
        out(format!("  monetary:              {} {kind}", opt(r.monetary_value.map(|v| v.to_string()))));
    }
    if let (Some(n), Some(t)) = (r.validity_interval_count, r.validity_interval_type) {
        out(format!("  valid for:             {n} {}", format!("{t:?}").to_lowercase()));
    }
    if r.forced_validity == Some(true) {
        out(format!(
            "  forced validity:       {} to {}",
            opt(r.forced_validity_start.clone()),
            opt(r.forced_validity_end.clone())
        ));
    }
    if let Some(stock) = r.extra.get("stock") {
        out(format!("  stock:                 {stock}"));
    }
    if !r.custom_fields.is_empty() {
        let fields: Vec<String> = r
            .custom_fields
            .iter()
            .map(|c| format!("{}={}", c.name.as_deref().unwrap_or(""), c.value.as_deref().unwrap_or("")))
            .collect();
        out(format!("  custom_fields:         {}", fields.join(", ")));
    }
}
