//! Label and field selectors: parsing the `labelSelector` / `fieldSelector`
//! query parameters and `metav1.LabelSelector` objects, and matching them
//! against objects (as JSON).
//!
//! The label grammar, its error messages and its canonical string form follow
//! `k8s.io/apimachinery/pkg/labels` (`Parse`, `NewRequirement`,
//! `Requirement.String`); field selectors follow `fields.ParseSelector` plus
//! each kind's `SelectableFields` in kube-apiserver. This module owns only the
//! selector types: it reads objects, never stores or routes anything, and
//! every failure on user input is a 400 [`ApiError`], never a panic.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::status::{ApiError, FieldError};
use crate::registry::Resource;

// ---------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------

/// A label selector operator (apimachinery's `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// The binary operators, worded as apimachinery's `binaryOperators`.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// One `key op values` term of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and deduplicated (apimachinery keeps a string set).
    values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key, the number of values
    /// for the operator, and every value.
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Result<Self, String> {
        values.sort();
        values.dedup();
        let mut errors: Vec<String> = Vec::new();
        if let Err(e) = validate_label_key(key, "key") {
            errors.push(e);
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errors.push(field_invalid(
                        "values",
                        Value::Array(Vec::new()),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errors.push(field_invalid(
                        "values",
                        values_json(&values),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errors.push(field_invalid(
                        "values",
                        values_json(&values),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(field_invalid(
                        "values",
                        values_json(&values),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errors.push(field_invalid(
                            &format!("values[{i}]"),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let problems = label_value_problems(v);
            if !problems.is_empty() {
                errors.push(field_invalid(
                    &format!("values[{i}][{key}]"),
                    v.as_str(),
                    &problems.join("; "),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self {
                key: key.to_owned(),
                operator,
                values,
            })
        } else {
            Err(aggregate(errors))
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// `Requirement.Matches`: `get` looks a label up.
    fn matches<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> bool {
        let found = get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                found.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => found.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = found.map(str::parse::<i64>) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements, sorted by key.
/// The empty selector matches everything.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query syntax, exactly as
    /// `k8s.io/apimachinery/pkg/labels.Parse`: `a=b`, `a==b`, `a!=b`,
    /// `a in (x,y)`, `a notin (x, y)`, `a` (exists), `!a` (does not exist),
    /// `a>1`/`a<1` (numeric gt/lt), comma = AND, whitespace tolerant;
    /// keys/values validated as label keys/values. Errors are 400 BadRequest
    /// with apimachinery's wording.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let tokens = lex(s);
        let mut parser = Parser {
            tokens,
            position: 0,
        };
        let mut requirements = parser.parse().map_err(ApiError::bad_request)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// From a `metav1.LabelSelector` JSON value (`matchLabels` +
    /// `matchExpressions` with In/NotIn/Exists/DoesNotExist), as
    /// `metav1.LabelSelectorAsSelector`. An empty selector `{}` matches
    /// everything. `null` or any non-object is rejected (400): a null or
    /// absent selector is the caller's concern.
    pub fn from_label_selector(value: &Value) -> Result<LabelSelector, ApiError> {
        let Some(object) = value.as_object() else {
            return Err(ApiError::bad_request(format!(
                "invalid label selector: expected an object, found {}",
                json_type(value)
            )));
        };
        let mut requirements = Vec::new();
        match object.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (key, value) in labels {
                    let Some(value) = value.as_str() else {
                        return Err(ApiError::bad_request(format!(
                            "invalid label selector: matchLabels[{key}] must be a string, found {}",
                            json_type(value)
                        )));
                    };
                    let r = Requirement::new(key, Operator::Equals, vec![value.to_owned()])
                        .map_err(ApiError::bad_request)?;
                    requirements.push(r);
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid label selector: matchLabels must be an object, found {}",
                    json_type(other)
                )));
            }
        }
        match object.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(expressions)) => {
                for (i, expression) in expressions.iter().enumerate() {
                    requirements.push(expression_requirement(i, expression)?);
                }
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "invalid label selector: matchExpressions must be an array, found {}",
                    json_type(other)
                )));
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// The selector that matches every object.
    pub fn everything() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
        }
    }

    /// Whether this selector places no restriction.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|key: &str| labels.get(key).map(String::as_str))
    }

    /// Matches `metadata.labels` of a JSON object (absent labels = empty
    /// set; non-string label values are ignored).
    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.matches_with(&|key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str))
    }

    fn matches_with<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.matches(get))
    }
}

/// Canonical string form (apimachinery's `Selector.String`), parseable again.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// One `matchExpressions` entry.
fn expression_requirement(index: usize, expression: &Value) -> Result<Requirement, ApiError> {
    let bad = |what: &str| {
        ApiError::bad_request(format!(
            "invalid label selector: matchExpressions[{index}]: {what}"
        ))
    };
    let Some(expression) = expression.as_object() else {
        return Err(bad("must be an object"));
    };
    let key = match expression.get("key") {
        Some(Value::String(k)) => k.as_str(),
        None | Some(Value::Null) => "",
        Some(_) => return Err(bad("key must be a string")),
    };
    let operator = match expression.get("operator") {
        Some(Value::String(op)) => op.as_str(),
        None | Some(Value::Null) => "",
        Some(_) => return Err(bad("operator must be a string")),
    };
    let values = match expression.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| bad("values must be strings"))?,
        Some(_) => return Err(bad("values must be an array")),
    };
    let operator = match operator {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => {
            return Err(ApiError::bad_request(format!(
                "{} is not a valid label selector operator",
                quote(other)
            )));
        }
    };
    Requirement::new(key, operator, values).map_err(ApiError::bad_request)
}

// --- lexer ------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// apimachinery's `Lexer` run to the end: every token with its literal,
/// always ending with [`Token::End`]. Operators are ASCII, so slicing at
/// their byte positions keeps literals valid UTF-8. Unlike Go, a NUL byte
/// is an ordinary (and invalid) identifier character, not an early end.
fn lex(s: &str) -> Vec<(Token, &str)> {
    let bytes = s.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        let Some(&b) = bytes.get(pos) else {
            tokens.push((Token::End, ""));
            return tokens;
        };
        if is_special(b) {
            let two = bytes.get(pos + 1) == Some(&b'=') && matches!(b, b'=' | b'!');
            let len = if two { 2 } else { 1 };
            let token = match (b, two) {
                (b'=', true) => Token::DoubleEquals,
                (b'!', true) => Token::NotEquals,
                (b'=', false) => Token::Equals,
                (b'!', false) => Token::DoesNotExist,
                (b'(', _) => Token::OpenPar,
                (b')', _) => Token::ClosedPar,
                (b',', _) => Token::Comma,
                (b'>', _) => Token::GreaterThan,
                _ => Token::LessThan,
            };
            tokens.push((token, &s[pos..pos + len]));
            pos += len;
        } else {
            let start = pos;
            while pos < bytes.len() && !is_special(bytes[pos]) && !is_whitespace(bytes[pos]) {
                pos += 1;
            }
            let literal = &s[start..pos];
            let token = match literal {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            };
            tokens.push((token, literal));
        }
    }
}

// --- parser -----------------------------------------------------------------

/// Whether `in`/`notin` are keywords (operator position) or identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// apimachinery's recursive-descent `Parser`, message for message.
struct Parser<'s> {
    tokens: Vec<(Token, &'s str)>,
    position: usize,
}

impl<'s> Parser<'s> {
    fn lookahead(&self, context: Context) -> (Token, &'s str) {
        let (token, literal) = self
            .tokens
            .get(self.position)
            .copied()
            .unwrap_or((Token::End, ""));
        match token {
            Token::In | Token::NotIn if context == Context::Values => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, &'s str) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values)
    }

    /// The key, and `Exists`/`DoesNotExist` when the requirement is unary.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'s str, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        validate_label_key(literal, "key")?;
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::End || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// A possibly empty list of comma-separated, possibly empty values.
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.push(literal.to_owned());
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new()); // "(,"
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.push(String::new()); // ",)"
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.push(String::new()); // ",,"
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::End || token == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal.to_owned()])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

// --- label key/value validation (apimachinery util/validation) --------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// apimachinery's `RegexError`.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join(" or ")
    )
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
            }
            _ => false,
        }
    })
}

/// `validation.IsQualifiedName`.
fn qualified_name_problems(value: &str) -> Vec<String> {
    let name_regex = || {
        regex_error(
            QUALIFIED_NAME_ERR,
            QUALIFIED_NAME_FMT,
            &["MyName", "my.name", "123-abc"],
        )
    };
    let mut problems = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > 253 {
                    problems.push("prefix part must be no more than 253 characters".to_owned());
                }
                if !is_dns1123_subdomain(prefix) {
                    problems.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_ERR,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                name_regex()
            )];
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        problems.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_qualified_name_part(name) {
        problems.push(format!("name part {}", name_regex()));
    }
    problems
}

/// `validation.IsValidLabelValue`.
fn label_value_problems(value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        problems.push(regex_error(
            LABEL_VALUE_ERR,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    problems
}

fn validate_label_key(key: &str, path: &str) -> Result<(), String> {
    let problems = qualified_name_problems(key);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(field_invalid(path, key, &problems.join("; ")))
    }
}

/// A `field.Invalid(path, value, detail).Error()` string.
fn field_invalid(path: &str, value: impl Into<Value>, detail: &str) -> String {
    format!(
        "{path}: {}",
        FieldError::invalid(path, value, detail).message()
    )
}

/// `utilerrors.NewAggregate(...).Error()`: one message as is, several in
/// brackets.
fn aggregate(mut errors: Vec<String>) -> String {
    errors.dedup();
    if errors.len() == 1 {
        errors.remove(0)
    } else {
        format!("[{}]", errors.join(", "))
    }
}

fn values_json(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// How a selectable field is read from an object, and how a missing field
/// renders (Go's zero value for the field's type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Getter {
    /// A string at this path; missing = "".
    Str(&'static [&'static str]),
    /// A boolean at this path, rendered `true`/`false`; missing = "false".
    Bool(&'static [&'static str]),
    /// An integer at this path; missing = "0".
    Int(&'static [&'static str]),
    /// `status.podIP`, else the first of `status.podIPs`.
    PodIp,
    /// Any of `status.podIPs[*].ip` (else `status.podIP`).
    PodIps,
    /// An Event's `source.component`, else its `reportingComponent`.
    EventSource,
}

/// The selectable fields of every kind.
const COMMON_FIELDS: &[(&str, Getter)] = &[
    ("metadata.name", Getter::Str(&["metadata", "name"])),
    (
        "metadata.namespace",
        Getter::Str(&["metadata", "namespace"]),
    ),
];

const POD_FIELDS: &[(&str, Getter)] = &[
    ("spec.nodeName", Getter::Str(&["spec", "nodeName"])),
    (
        "spec.restartPolicy",
        Getter::Str(&["spec", "restartPolicy"]),
    ),
    (
        "spec.schedulerName",
        Getter::Str(&["spec", "schedulerName"]),
    ),
    (
        "spec.serviceAccountName",
        Getter::Str(&["spec", "serviceAccountName"]),
    ),
    ("spec.hostNetwork", Getter::Bool(&["spec", "hostNetwork"])),
    ("status.phase", Getter::Str(&["status", "phase"])),
    ("status.podIP", Getter::PodIp),
    ("status.podIPs", Getter::PodIps),
    (
        "status.nominatedNodeName",
        Getter::Str(&["status", "nominatedNodeName"]),
    ),
];

const EVENT_FIELDS: &[(&str, Getter)] = &[
    (
        "involvedObject.kind",
        Getter::Str(&["involvedObject", "kind"]),
    ),
    (
        "involvedObject.namespace",
        Getter::Str(&["involvedObject", "namespace"]),
    ),
    (
        "involvedObject.name",
        Getter::Str(&["involvedObject", "name"]),
    ),
    (
        "involvedObject.uid",
        Getter::Str(&["involvedObject", "uid"]),
    ),
    (
        "involvedObject.apiVersion",
        Getter::Str(&["involvedObject", "apiVersion"]),
    ),
    (
        "involvedObject.resourceVersion",
        Getter::Str(&["involvedObject", "resourceVersion"]),
    ),
    (
        "involvedObject.fieldPath",
        Getter::Str(&["involvedObject", "fieldPath"]),
    ),
    ("reason", Getter::Str(&["reason"])),
    ("reportingComponent", Getter::Str(&["reportingComponent"])),
    ("source", Getter::EventSource),
    ("type", Getter::Str(&["type"])),
];

/// Kind-specific selectable fields, by (group, plural).
fn kind_fields(resource: &Resource) -> &'static [(&'static str, Getter)] {
    match (resource.group, resource.plural) {
        ("", "pods") => POD_FIELDS,
        ("", "events") => EVENT_FIELDS,
        ("", "secrets") => &[("type", Getter::Str(&["type"]))],
        ("", "nodes") => &[(
            "spec.unschedulable",
            Getter::Bool(&["spec", "unschedulable"]),
        )],
        ("", "namespaces") => &[("status.phase", Getter::Str(&["status", "phase"]))],
        ("apps", "replicasets") => &[("status.replicas", Getter::Int(&["status", "replicas"]))],
        // The selectable field is `status.successful`; the JSON field `succeeded`.
        ("batch", "jobs") => &[("status.successful", Getter::Int(&["status", "succeeded"]))],
        ("", "services") => &[
            ("spec.clusterIP", Getter::Str(&["spec", "clusterIP"])),
            ("spec.type", Getter::Str(&["spec", "type"])),
        ],
        _ => &[],
    }
}

fn getter_for(resource: &Resource, field: &str) -> Option<Getter> {
    COMMON_FIELDS
        .iter()
        .chain(kind_fields(resource))
        .find(|(name, _)| *name == field)
        .map(|(_, getter)| *getter)
}

fn lookup<'v>(object: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(object, |v, segment| v.get(segment))
}

/// A scalar as a field selector sees it; objects, arrays and null are "".
fn scalar(value: Option<&Value>) -> Option<Cow<'_, str>> {
    match value? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

fn non_empty_str<'v>(object: &'v Value, path: &[&str]) -> Option<&'v str> {
    lookup(object, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl Getter {
    /// Whether the field of `object` equals `value`.
    fn equals(self, object: &Value, value: &str) -> bool {
        let single =
            |v: Option<Cow<'_, str>>, missing: &str| v.as_deref().unwrap_or(missing) == value;
        match self {
            Getter::Str(path) => single(scalar(lookup(object, path)), ""),
            Getter::Bool(path) => single(scalar(lookup(object, path)), "false"),
            Getter::Int(path) => single(scalar(lookup(object, path)), "0"),
            Getter::PodIp => {
                let ip = non_empty_str(object, &["status", "podIP"]).or_else(|| {
                    lookup(object, &["status", "podIPs"])
                        .and_then(|ips| ips.get(0))
                        .and_then(|first| first.get("ip"))
                        .and_then(Value::as_str)
                });
                ip.unwrap_or("") == value
            }
            Getter::PodIps => {
                let mut ips: Vec<&str> = lookup(object, &["status", "podIPs"])
                    .and_then(Value::as_array)
                    .map(|ips| {
                        ips.iter()
                            .filter_map(|ip| ip.get("ip").and_then(Value::as_str))
                            .collect()
                    })
                    .unwrap_or_default();
                if ips.is_empty() {
                    ips.extend(non_empty_str(object, &["status", "podIP"]));
                }
                if ips.is_empty() {
                    value.is_empty()
                } else {
                    ips.contains(&value)
                }
            }
            Getter::EventSource => {
                let source = non_empty_str(object, &["source", "component"])
                    .or_else(|| lookup(object, &["reportingComponent"]).and_then(Value::as_str));
                source.unwrap_or("") == value
            }
        }
    }
}

/// One `field=value` / `field!=value` term.
#[derive(Clone, Debug)]
struct FieldTerm {
    field: String,
    value: String,
    negated: bool,
    getter: Getter,
}

/// A parsed field selector: the AND of its terms, each checked to be a
/// selectable field of the resource it was parsed for.
#[derive(Clone, Debug)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// An unescaped term of `fields.ParseSelector`, before the field check.
struct RawTerm {
    field: String,
    value: String,
    negated: bool,
}

impl FieldSelector {
    /// Parses `fieldSelector` (`f=v`, `f==v`, `f!=v`, comma-AND; values may
    /// escape `\,` `\=` `\\` as apimachinery's `fields.Parse`) and checks
    /// each field is supported for `resource` (`metadata.name` and
    /// `metadata.namespace` for every kind, plus the kind's own fields, as
    /// kube-apiserver). Else 400 BadRequest `field label not supported: <field>`.
    pub fn parse(s: &str, resource: &Resource) -> Result<FieldSelector, ApiError> {
        let raw = parse_field_terms(s).map_err(ApiError::bad_request)?;
        let mut terms = Vec::with_capacity(raw.len());
        for term in raw {
            let Some(getter) = getter_for(resource, &term.field) else {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    term.field
                )));
            };
            terms.push(FieldTerm {
                field: term.field,
                value: term.value,
                negated: term.negated,
                getter,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The selector that matches every object.
    pub fn everything() -> FieldSelector {
        FieldSelector { terms: Vec::new() }
    }

    /// Whether this selector places no restriction.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `object` satisfies every term. A missing field reads as its
    /// zero value: "" for strings, "false" for booleans, "0" for counts;
    /// `status.podIPs` matches when any of the pod's IPs does.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| t.getter.equals(object, &t.value) != t.negated)
    }

    /// If the selector pins `metadata.name` with `=`/`==`, that name (lets
    /// the caller do a single get; it must still apply [`Self::matches`]).
    pub fn exact_name(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| !t.negated && t.field == "metadata.name")
            .map(|t| t.value.as_str())
    }
}

/// `fields.ParseSelector` without the field check: split on unescaped
/// commas, sort, split each term at its first operator, unescape values.
fn parse_field_terms(selector: &str) -> Result<Vec<RawTerm>, String> {
    let mut parts = split_terms(selector);
    parts.sort_unstable();
    let mut terms = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let Some((field, op, value)) = split_term(part) else {
            return Err(format!(
                "invalid selector: '{selector}'; can't understand '{part}'"
            ));
        };
        terms.push(RawTerm {
            field: field.to_owned(),
            value: unescape_value(value)?,
            negated: op == "!=",
        });
    }
    Ok(terms)
}

/// Splits on commas not preceded by an escaping backslash.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, b) in selector.bytes().enumerate() {
        if in_slash {
            in_slash = false;
        } else if b == b'\\' {
            in_slash = true;
        } else if b == b',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits `term` at the first position where `!=`, `==` or `=` starts.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for i in 0..term.len() {
        let remaining = &term.as_bytes()[i..];
        for op in ["!=", "==", "="] {
            if remaining.starts_with(op.as_bytes()) {
                // `op` is ASCII, so `i` and `i + op.len()` are char boundaries.
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`: `\\`, `\,`, `\=` are escapes; any other escape,
/// a trailing `\`, or a bare `,`/`=` is an error.
fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
