//! STUB in main until the validation branch merges.
use serde_json::Value;

use crate::{apiserver::status::ApiError, registry::Resource};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}
impl FieldValidation {
    pub fn parse(value: Option<&str>) -> Result<FieldValidation, ApiError> {
        match value {
            None | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid fieldValidation {v}"
            ))),
        }
    }
}
pub struct Admitted {
    pub object: Value,
    pub warnings: Vec<String>,
}
pub fn admit_create(
    _resource: &'static Resource,
    object: Value,
    _mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    Ok(Admitted {
        object,
        warnings: vec![],
    })
}
pub fn admit_update(
    _resource: &'static Resource,
    _old: &Value,
    object: Value,
    _mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    Ok(Admitted {
        object,
        warnings: vec![],
    })
}
