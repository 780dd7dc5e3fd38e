//! Decoding a JSON object into its k8s-openapi type the way kube-apiserver
//! decodes into Go structs:
//!
//! - a path-tracking deserializer over `&serde_json::Value`, so a type
//!   error names its field (`spec.replicas`) and every key the type does
//!   not know is reported with its path. k8s-openapi's generated
//!   `Deserialize` impls skip unknown keys through `IgnoredAny`, so an
//!   unknown key is exactly a call to `deserialize_ignored_any` (the same
//!   hook `serde_ignored` uses);
//! - `null` behaves as in Go: an unset optional field, or the zero value of
//!   a required one (`""`, `0`, `false`, empty list or object);
//! - `resource.Quantity` values are parsed while decoding (a malformed one
//!   is a 400, as in kube) and canonicalized (`0.5` → `500m`);
//! - duplicate keys, which a parsed `Value` can no longer show, are found
//!   by [`duplicate_fields`] on the raw request body.
//!
//! It owns no policy: what to do with unknown or duplicate fields is the
//! caller's (`fieldValidation`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

use super::path::Path;
use super::quantity;

/// Why an object could not be decoded, with the field it happened at.
#[derive(Debug)]
pub(crate) struct DecodeError {
    path: Option<String>,
    problem: Problem,
}

#[derive(Debug)]
enum Problem {
    /// JSON of one type where the schema wants another (or an out-of-range
    /// number): Go's `UnmarshalTypeError`.
    Mismatch {
        got: String,
        expected: String,
    },
    Missing(&'static str),
    Other(String),
}

impl DecodeError {
    /// Attaches the innermost path: errors bubble up through every level
    /// and only the first (deepest) one sets it.
    fn at(mut self, path: &Path) -> Self {
        if self.path.is_none() {
            self.path = Some(path.as_str().to_owned());
        }
        self
    }

    fn mismatch(got: String, expected: &str) -> Self {
        DecodeError {
            path: None,
            problem: Problem::Mismatch {
                got,
                expected: expected.to_owned(),
            },
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_deref().unwrap_or("");
        match &self.problem {
            Problem::Mismatch { got, expected } => {
                let field = if path.is_empty() { "Object" } else { path };
                write!(
                    f,
                    "json: cannot unmarshal {got} into Go struct field {field} of type {expected}"
                )
            }
            Problem::Missing(name) => {
                if path.is_empty() {
                    write!(f, "json: missing required field \"{name}\"")
                } else {
                    write!(f, "json: missing required field \"{path}.{name}\"")
                }
            }
            Problem::Other(msg) => {
                if path.is_empty() {
                    f.write_str(msg)
                } else {
                    write!(f, "error decoding field \"{path}\": {msg}")
                }
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Go's name for the kind of JSON value found.
fn json_kind(unexp: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match unexp {
        U::Bool(_) => "bool".to_owned(),
        U::Unsigned(n) => format!("number {n}"),
        U::Signed(n) => format!("number {n}"),
        U::Float(n) => format!("number {n}"),
        U::Char(_) | U::Str(_) | U::Bytes(_) => "string".to_owned(),
        U::Unit | U::Option => "null".to_owned(),
        U::Seq => "array".to_owned(),
        U::Map => "object".to_owned(),
        other => other.to_string(),
    }
}

/// Go's name for the type serde expected.
fn go_type(expected: &dyn de::Expected) -> String {
    let s = expected.to_string();
    match s.as_str() {
        "i8" | "i16" | "i32" | "i64" => format!("int{}", &s[1..]),
        "u8" | "u16" | "u32" | "u64" => format!("uint{}", &s[1..]),
        "f32" | "f64" => format!("float{}", &s[1..]),
        "a string" | "a borrowed string" | "a base64-encoded string" => "string".to_owned(),
        "a boolean" => "bool".to_owned(),
        "a sequence" => "array".to_owned(),
        "a map" => "object".to_owned(),
        _ => s,
    }
}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError {
            path: None,
            problem: Problem::Other(msg.to_string()),
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::mismatch(json_kind(&unexp), &go_type(exp))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        use de::Unexpected as U;
        match unexp {
            U::Unsigned(_) | U::Signed(_) | U::Float(_) => {
                Self::mismatch(json_kind(&unexp), &go_type(exp))
            }
            _ => Self::custom(format_args!("invalid value: {unexp}, expected {exp}")),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DecodeError {
            path: None,
            problem: Problem::Missing(field),
        }
    }
}

/// Decodes `value` into `T`; also returns the path of every unknown field,
/// in document order.
pub(crate) fn decode<T: DeserializeOwned>(value: &Value) -> Result<(T, Vec<String>), DecodeError> {
    let unknown = RefCell::new(Vec::new());
    let typed = T::deserialize(ValueDe {
        value,
        path: Path::root(""),
        unknown: &unknown,
    })?;
    Ok((typed, unknown.into_inner()))
}

type Unknown = RefCell<Vec<String>>;

struct ValueDe<'de, 'u> {
    value: &'de Value,
    path: Path,
    unknown: &'u Unknown,
}

fn visit_number<'de, V: Visitor<'de>>(
    n: &serde_json::Number,
    visitor: V,
) -> Result<V::Value, DecodeError> {
    if let Some(u) = n.as_u64() {
        visitor.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        visitor.visit_i64(i)
    } else if let Some(f) = n.as_f64() {
        visitor.visit_f64(f)
    } else {
        Err(de::Error::custom(format_args!("invalid number {n}")))
    }
}

impl<'de, 'u> ValueDe<'de, 'u> {
    /// Visits the JSON value as it is; objects as structs (`a.b` paths) or
    /// maps (`a[b]` paths).
    fn visit<V: Visitor<'de>>(self, visitor: V, is_struct: bool) -> Result<V::Value, DecodeError> {
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(SeqDe {
                iter: items.iter().enumerate(),
                parent: &self.path,
                unknown: self.unknown,
            }),
            Value::Object(map) => visitor.visit_map(MapDe {
                iter: Some(map.iter()),
                pending: None,
                parent: &self.path,
                unknown: self.unknown,
                is_struct,
            }),
        };
        result.map_err(|e| e.at(&self.path))
    }

    fn empty_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        const EMPTY: &[Value] = &[];
        visitor
            .visit_seq(SeqDe {
                iter: EMPTY.iter().enumerate(),
                parent: &self.path,
                unknown: self.unknown,
            })
            .map_err(|e| e.at(&self.path))
    }

    fn empty_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor
            .visit_map(MapDe {
                iter: None,
                pending: None,
                parent: &self.path,
                unknown: self.unknown,
                is_struct: true,
            })
            .map_err(|e| e.at(&self.path))
    }

    fn is_null(&self) -> bool {
        self.value.is_null()
    }

    /// `resource.Quantity`: a string or number, parsed and canonicalized.
    fn quantity<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let text = match self.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => "0".to_owned(),
            Value::Bool(_) => {
                return Err(DecodeError::mismatch("bool".into(), "Quantity").at(&self.path));
            }
            Value::Array(_) => {
                return Err(DecodeError::mismatch("array".into(), "Quantity").at(&self.path));
            }
            Value::Object(_) => {
                return Err(DecodeError::mismatch("object".into(), "Quantity").at(&self.path));
            }
        };
        let canonical = quantity::canonicalize(&text)
            .map_err(|msg| <DecodeError as de::Error>::custom(msg).at(&self.path))?;
        visitor
            .visit_newtype_struct(StringDeserializer::<DecodeError>::new(canonical))
            .map_err(|e| e.at(&self.path))
    }
}

macro_rules! zero_if_null {
    ($($method:ident => $zero:ident($($arg:expr)?)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
                if self.is_null() {
                    let path = self.path;
                    visitor
                        .$zero::<DecodeError>($($arg)?)
                        .map_err(|e| e.at(&path))
                } else {
                    self.visit(visitor, false)
                }
            }
        )*
    };
}

impl<'de, 'u> Deserializer<'de> for ValueDe<'de, 'u> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit(visitor, false)
    }

    zero_if_null! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_u64(0),
        deserialize_i16 => visit_u64(0),
        deserialize_i32 => visit_u64(0),
        deserialize_i64 => visit_u64(0),
        deserialize_i128 => visit_u64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_u128 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_str => visit_borrowed_str(""),
        deserialize_string => visit_borrowed_str(""),
        deserialize_bytes => visit_borrowed_bytes(&[]),
        deserialize_byte_buf => visit_borrowed_bytes(&[]),
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit(visitor, false)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_null() {
            let path = self.path;
            visitor.visit_none::<DecodeError>().map_err(|e| e.at(&path))
        } else {
            let path = self.path.clone();
            visitor.visit_some(self).map_err(|e| e.at(&path))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit(visitor, false)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.visit(visitor, false)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if name == "Quantity" {
            return self.quantity(visitor);
        }
        let path = self.path.clone();
        visitor.visit_newtype_struct(self).map_err(|e| e.at(&path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_null() {
            self.empty_seq(visitor)
        } else {
            self.visit(visitor, false)
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.is_null() {
            self.empty_map(visitor)
        } else {
            self.visit(visitor, false)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        if self.is_null() {
            self.empty_map(visitor)
        } else {
            self.visit(visitor, true)
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::String(s) => visitor
                .visit_enum(BorrowedStrDeserializer::<DecodeError>::new(s))
                .map_err(|e| e.at(&self.path)),
            other => Err(DecodeError::mismatch(kind_of(other).into(), "string").at(&self.path)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.visit(visitor, false)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.unknown.borrow_mut().push(self.path.into());
        visitor.visit_unit()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct SeqDe<'de, 'u, 'p> {
    iter: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    parent: &'p Path,
    unknown: &'u Unknown,
}

impl<'de> SeqAccess<'de> for SeqDe<'de, '_, '_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.iter.next() {
            Some((i, value)) => seed
                .deserialize(ValueDe {
                    value,
                    path: self.parent.index(i),
                    unknown: self.unknown,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDe<'de, 'u, 'p> {
    iter: Option<serde_json::map::Iter<'de>>,
    pending: Option<(&'de str, &'de Value)>,
    parent: &'p Path,
    unknown: &'u Unknown,
    /// Struct fields render as `a.b`, map keys as `a[b]`.
    is_struct: bool,
}

impl<'de> MapAccess<'de> for MapDe<'de, '_, '_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, value)) = self.iter.as_mut().and_then(Iterator::next) else {
            return Ok(None);
        };
        self.pending = Some((key.as_str(), value));
        seed.deserialize(BorrowedStrDeserializer::<DecodeError>::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("map value requested before its key"));
        };
        let path = if self.is_struct {
            self.parent.child(key)
        } else {
            self.parent.key(key)
        };
        seed.deserialize(ValueDe {
            value,
            path,
            unknown: self.unknown,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.iter.as_ref().map(ExactSizeIterator::len)
    }
}

/// Paths of keys that occur more than once in one JSON object of `body`
/// (`metadata.name`), in document order. A body that is not JSON yields
/// what was found before the syntax error (the caller reports that error).
pub(crate) fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = DupSeed {
        path: Path::root(""),
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

struct DupSeed<'a> {
    path: Path,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for DupSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(DupSeed {
                path: self.path.index(i),
                found: &mut *self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = self.path.child(&key);
            if !seen.insert(key) {
                self.found.push(path.as_str().to_owned());
            }
            map.next_value_seed(DupSeed {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}
