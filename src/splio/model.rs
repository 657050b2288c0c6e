//! Splio reward types: what is sent ([`NewReward`]) and what comes back ([`Reward`]).

use crate::error::FieldError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A custom field of a reward.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomField {
    /// Set by Splio in answers.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_i64")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl CustomField {
    /// A field to send.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        CustomField { id: None, name: Some(name.into()), value: Some(value.into()) }
    }
}

/// Whether a monetary reward's value is a percentage or an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MonetaryType {
    Percentage,
    Value,
}

/// The unit of `validity_interval_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidityIntervalType {
    Days,
    Weeks,
    Months,
    Years,
}

/// A reward to create. `external_id`, `name`, `holding_days` and `nqp_value` are required;
/// everything else is optional. Dates are `YYYY-MM-DD HH:MM:SS`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NewReward {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_generated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Vec<CustomField>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub external_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_validity: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_validity_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_validity_start: Option<String>,
    pub holding_days: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited: Option<bool>,
    /// Sent as a string, the type of the vendor's create schema.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "count_as_string",
        deserialize_with = "lenient_u64",
        default
    )]
    pub max_attribution_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monetary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monetary_type: Option<MonetaryType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monetary_value: Option<f64>,
    pub name: String,
    pub nqp_value: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rich_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_interval_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_interval_type: Option<ValidityIntervalType>,
}

impl NewReward {
    /// A reward with its four required fields; set the others on the returned value.
    pub fn new(external_id: impl Into<String>, name: impl Into<String>, holding_days: i64, nqp_value: i64) -> Self {
        NewReward { external_id: external_id.into(), name: name.into(), holding_days, nqp_value, ..Default::default() }
    }

    /// Every violation of Splio's documented rules, at once; empty when the reward is valid.
    pub fn validate(&self) -> Vec<FieldError> {
        super::validate::validate_reward_value(&self.to_value())
    }

    /// The reward as JSON, with the vendor's field names.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a reward from untyped JSON, reporting every problem as field errors.
    pub fn from_value(v: &Value) -> Result<NewReward, Vec<FieldError>> {
        let errs = super::validate::validate_reward_value(v);
        if !errs.is_empty() {
            return Err(errs);
        }
        serde_json::from_value(v.clone()).map_err(|e| vec![FieldError::new("reward", "wrong_type", e.to_string())])
    }
}

/// A reward as Splio returns it. Fields Splio may leave out are optional; anything else it
/// returns (`id`, `stock`, ...) is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reward {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub auto_generated: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_fields: Vec<CustomField>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub external_id: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub forced_validity: Option<bool>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub forced_validity_end: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    pub forced_validity_start: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub holding_days: Option<i64>,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub limited: Option<bool>,
    /// A number in answers; accepted as a string too.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_attribution_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub monetary: Option<bool>,
    /// `None` when Splio answers `""`.
    #[serde(default, deserialize_with = "enum_or_none")]
    pub monetary_type: Option<MonetaryType>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub monetary_value: Option<f64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub nqp_value: Option<i64>,
    #[serde(default)]
    pub rich_description: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub validity_interval_count: Option<i64>,
    #[serde(default, deserialize_with = "enum_or_none")]
    pub validity_interval_type: Option<ValidityIntervalType>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn count_as_string<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(n) => s.serialize_str(&n.to_string()),
        None => s.serialize_none(),
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(super::validate::count_value))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => n.as_i64().map(|n| n != 0),
        Some(Value::String(s)) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.and_then(|v| v.as_str().map(str::to_string)).filter(|s| !s.is_empty()))
}

fn enum_or_none<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.filter(|v| v.as_str() != Some("")).and_then(|v| serde_json::from_value(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_reward_sends_the_count_as_a_string() {
        let mut r = NewReward::new("x", "X", 1, 2);
        r.max_attribution_count = Some(5);
        r.limited = Some(true);
        r.auto_generated = Some(true);
        assert_eq!(r.to_value()["max_attribution_count"], json!("5"));
        assert_eq!(NewReward::from_value(&r.to_value()).unwrap(), r);
    }

    #[test]
    fn reward_reads_loose_answers() {
        let r: Reward = serde_json::from_value(json!({
            "external_id": "a", "name": "A", "monetary_type": "", "max_attribution_count": "7",
            "custom_fields": [{"id": 3, "name": "k", "value": "v"}], "stock": 7, "id": 12
        }))
        .unwrap();
        assert_eq!(r.monetary_type, None);
        assert_eq!(r.max_attribution_count, Some(7));
        assert_eq!(r.custom_fields[0].id, Some(3));
        assert_eq!(r.extra["stock"], json!(7));
    }
}
