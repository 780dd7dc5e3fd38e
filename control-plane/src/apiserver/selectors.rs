//! STUB in main until the watch branch merges.
use std::collections::BTreeMap;

use serde_json::Value;

use crate::{apiserver::status::ApiError, registry::Resource};

#[derive(Clone, Debug, PartialEq)]
pub struct LabelSelector;
impl LabelSelector {
    pub fn parse(_s: &str) -> Result<LabelSelector, ApiError> { Ok(Self) }
    pub fn from_label_selector(_value: &Value) -> Result<LabelSelector, ApiError> { Ok(Self) }
    pub fn everything() -> LabelSelector { Self }
    pub fn is_empty(&self) -> bool { true }
    pub fn matches(&self, _labels: &BTreeMap<String, String>) -> bool { true }
    pub fn matches_object(&self, _object: &Value) -> bool { true }
}
#[derive(Clone, Debug)]
pub struct FieldSelector;
impl FieldSelector {
    pub fn parse(_s: &str, _resource: &Resource) -> Result<FieldSelector, ApiError> { Ok(Self) }
    pub fn everything() -> FieldSelector { Self }
    pub fn is_empty(&self) -> bool { true }
    pub fn matches(&self, _object: &Value) -> bool { true }
    pub fn exact_name(&self) -> Option<&str> { None }
}
