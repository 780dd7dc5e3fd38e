//! Schema-driven translation of one protobuf message into the JSON object
//! the Go type would serialize to: walks the wire with [`super::wire`],
//! looks every field up in [`super::schema`], and renders the special
//! apimachinery types (Time, MicroTime, Duration, IntOrString, Quantity,
//! FieldsV1, RawExtension) the way their `MarshalJSON` does.
//!
//! Go's merge semantics are kept: a singular message seen twice is merged,
//! repeated fields append, scalars are last-wins. Unknown field numbers and
//! wrong wire types are errors, never skipped.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::ProtobufError;
use super::schema::{Field, Msg, Ty};
use super::wire::{Reader, WireError, WireType};

/// Where in the object a value sits, for error messages
/// (`spec.template.spec.containers[0].ports[1]`).
#[derive(Default)]
pub(super) struct Path(Vec<Seg>);

enum Seg {
    Field(&'static str),
    Index(usize),
    Key(String),
}

impl Path {
    fn push(&mut self, s: Seg) {
        self.0.push(s);
    }
    fn pop(&mut self) {
        self.0.pop();
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Field(n) if i == 0 => f.write_str(n)?,
                Seg::Field(n) => write!(f, ".{n}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// Decoding context: the current path and how deep embedded objects nest.
pub(super) struct Ctx {
    pub path: Path,
    /// Nesting of `RawExtension`s holding whole objects (bounded).
    pub depth: usize,
}

fn wire_err(message: &'static str, path: &Path, e: WireError) -> ProtobufError {
    ProtobufError::Malformed {
        message,
        path: path.to_string(),
        reason: e.to_string(),
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> ProtobufError {
    ProtobufError::InvalidValue {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn expect_wire(
    message: &'static str,
    field: &Field,
    got: WireType,
    want: WireType,
    path: &Path,
) -> Result<(), ProtobufError> {
    if got == want {
        Ok(())
    } else {
        Err(ProtobufError::WrongWireType {
            message,
            tag: field.tag,
            path: path.to_string(),
            got: got.name(),
            expected: want.name(),
        })
    }
}

/// Decodes `bytes`, a message of type `m`, into `out` (merging into what is there).
pub(super) fn message(
    m: &'static Msg,
    bytes: &[u8],
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<(), ProtobufError> {
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (tag, wt) = r.key().map_err(|e| wire_err(m.name, &ctx.path, e))?;
        let Some(field) = m.field(tag) else {
            return Err(ProtobufError::UnknownField {
                message: m.name,
                tag,
                path: ctx.path.to_string(),
            });
        };
        if let Ty::Inline(sub) = field.ty {
            expect_wire(m.name, field, wt, WireType::Len, &ctx.path)?;
            let payload = r
                .len_delimited()
                .map_err(|e| wire_err(m.name, &ctx.path, e))?;
            message(sub, payload, out, ctx)?;
            continue;
        }
        ctx.path.push(Seg::Field(field.name));
        field_value(m, field, wt, &mut r, out, ctx)?;
        ctx.path.pop();
    }
    Ok(())
}

/// A scalar read off the wire, before it is placed.
fn scalar(
    m: &'static Msg,
    field: &Field,
    wt: WireType,
    r: &mut Reader<'_>,
    ctx: &Ctx,
) -> Result<(Value, bool), ProtobufError> {
    let path = &ctx.path;
    match field.ty {
        Ty::Str => {
            expect_wire(m.name, field, wt, WireType::Len, path)?;
            let b = r.len_delimited().map_err(|e| wire_err(m.name, path, e))?;
            let s = utf8(b, path)?;
            Ok((Value::String(s.to_owned()), s.is_empty()))
        }
        Ty::Bytes => {
            expect_wire(m.name, field, wt, WireType::Len, path)?;
            let b = r.len_delimited().map_err(|e| wire_err(m.name, path, e))?;
            Ok((Value::String(base64(b)), b.is_empty()))
        }
        Ty::I32 | Ty::I64 | Ty::Bool => {
            expect_wire(m.name, field, wt, WireType::Varint, path)?;
            let v = r.varint().map_err(|e| wire_err(m.name, path, e))?;
            Ok(number(&field.ty, v))
        }
        _ => Err(invalid(path, "internal: not a scalar field")),
    }
}

/// A varint as the JSON value of an int32, int64 or bool field.
fn number(ty: &Ty, v: u64) -> (Value, bool) {
    match ty {
        // Negative int32s are sign-extended to 64 bits on the wire; truncation is
        // what every protobuf implementation does.
        Ty::I32 => {
            let n = i64::from(v as i32);
            (Value::Number(n.into()), n == 0)
        }
        Ty::Bool => (Value::Bool(v != 0), v == 0),
        _ => {
            let n = v as i64;
            (Value::Number(n.into()), n == 0)
        }
    }
}

fn utf8<'a>(b: &'a [u8], path: &Path) -> Result<&'a str, ProtobufError> {
    std::str::from_utf8(b).map_err(|e| invalid(path, format!("string is not valid UTF-8: {e}")))
}

fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Places a singular value: zero values of omittable fields are removed
/// (last one wins, as in Go).
fn set(out: &mut Map<String, Value>, field: &Field, value: Value, zero: bool) {
    if zero && !field.keep_zero {
        out.remove(field.name);
    } else {
        out.insert(field.name.to_owned(), value);
    }
}

/// The JSON array of a repeated field, created on first use.
fn array<'a>(
    out: &'a mut Map<String, Value>,
    name: &'static str,
    path: &Path,
) -> Result<&'a mut Vec<Value>, ProtobufError> {
    let slot = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or_else(|| invalid(path, "internal: field is not an array"))
}

/// The JSON object of a singular message or map field, created on first use.
fn object<'a>(
    out: &'a mut Map<String, Value>,
    name: &'static str,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, ProtobufError> {
    let slot = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| invalid(path, "internal: field is not an object"))
}

fn field_value(
    m: &'static Msg,
    field: &'static Field,
    wt: WireType,
    r: &mut Reader<'_>,
    out: &mut Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<(), ProtobufError> {
    match field.ty {
        Ty::Str | Ty::Bytes | Ty::I32 | Ty::I64 | Ty::Bool => {
            let numeric = matches!(field.ty, Ty::I32 | Ty::I64 | Ty::Bool);
            if field.repeated && numeric && wt == WireType::Len {
                // Packed encoding of a repeated scalar.
                let payload = r
                    .len_delimited()
                    .map_err(|e| wire_err(m.name, &ctx.path, e))?;
                let mut p = Reader::new(payload);
                let items = array(out, field.name, &ctx.path)?;
                while !p.is_empty() {
                    let v = p.varint().map_err(|e| wire_err(m.name, &ctx.path, e))?;
                    items.push(number(&field.ty, v).0);
                }
                return Ok(());
            }
            let (value, zero) = scalar(m, field, wt, r, ctx)?;
            if field.repeated {
                array(out, field.name, &ctx.path)?.push(value);
            } else {
                set(out, field, value, zero);
            }
        }
        Ty::Msg(sub) => {
            expect_wire(m.name, field, wt, WireType::Len, &ctx.path)?;
            let payload = r
                .len_delimited()
                .map_err(|e| wire_err(m.name, &ctx.path, e))?;
            if field.repeated {
                let index = array(out, field.name, &ctx.path)?.len();
                let mut obj = Map::new();
                ctx.path.push(Seg::Index(index));
                message(sub, payload, &mut obj, ctx)?;
                ctx.path.pop();
                array(out, field.name, &ctx.path)?.push(Value::Object(obj));
            } else {
                let obj = object(out, field.name, &ctx.path)?;
                message(sub, payload, obj, ctx)?;
            }
        }
        Ty::Inline(sub) => {
            // Handled by `message`; kept for exhaustiveness.
            expect_wire(m.name, field, wt, WireType::Len, &ctx.path)?;
            let payload = r
                .len_delimited()
                .map_err(|e| wire_err(m.name, &ctx.path, e))?;
            message(sub, payload, out, ctx)?;
        }
        Ty::MapStr | Ty::MapBytes | Ty::MapQuantity | Ty::MapMsg(_) => {
            expect_wire(m.name, field, wt, WireType::Len, &ctx.path)?;
            let payload = r
                .len_delimited()
                .map_err(|e| wire_err(m.name, &ctx.path, e))?;
            let (key, value) = map_entry(m, field, payload, ctx)?;
            object(out, field.name, &ctx.path)?.insert(key, value);
        }
        Ty::Time
        | Ty::MicroTime
        | Ty::Duration
        | Ty::IntOrString
        | Ty::Quantity
        | Ty::FieldsV1
        | Ty::RawExtension => {
            expect_wire(m.name, field, wt, WireType::Len, &ctx.path)?;
            let payload = r
                .len_delimited()
                .map_err(|e| wire_err(m.name, &ctx.path, e))?;
            let (value, zero) = special(&field.ty, payload, ctx)?;
            if field.repeated {
                array(out, field.name, &ctx.path)?.push(value);
            } else {
                set(out, field, value, zero);
            }
        }
    }
    Ok(())
}

/// One `map<string, V>` entry: `{1: key, 2: value}`.
fn map_entry(
    m: &'static Msg,
    field: &'static Field,
    bytes: &[u8],
    ctx: &mut Ctx,
) -> Result<(String, Value), ProtobufError> {
    const ENTRY: &str = "map entry";
    let mut r = Reader::new(bytes);
    let mut key = String::new();
    let mut value: Option<Value> = None;
    while !r.is_empty() {
        let (tag, wt) = r.key().map_err(|e| wire_err(ENTRY, &ctx.path, e))?;
        if wt != WireType::Len || tag > 2 {
            return Err(ProtobufError::Malformed {
                message: m.name,
                path: ctx.path.to_string(),
                reason: format!(
                    "entry of map field {} has unexpected field {tag} ({})",
                    field.tag,
                    wt.name()
                ),
            });
        }
        let payload = r
            .len_delimited()
            .map_err(|e| wire_err(ENTRY, &ctx.path, e))?;
        if tag == 1 {
            key = utf8(payload, &ctx.path)?.to_owned();
            continue;
        }
        ctx.path.push(Seg::Key(key.clone()));
        let v = match field.ty {
            Ty::MapStr => Value::String(utf8(payload, &ctx.path)?.to_owned()),
            Ty::MapBytes => Value::String(base64(payload)),
            Ty::MapQuantity => special(&Ty::Quantity, payload, ctx)?.0,
            Ty::MapMsg(sub) => {
                let mut obj = Map::new();
                message(sub, payload, &mut obj, ctx)?;
                Value::Object(obj)
            }
            _ => return Err(invalid(&ctx.path, "internal: not a map field")),
        };
        ctx.path.pop();
        value = Some(v);
    }
    let value = value.unwrap_or_else(|| match field.ty {
        Ty::MapQuantity => Value::String("0".to_owned()),
        Ty::MapMsg(_) => Value::Object(Map::new()),
        _ => Value::String(String::new()),
    });
    Ok((key, value))
}

/// The fields of a small special message: `(tag, varint or bytes)`.
enum Raw<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn fields<'a>(
    name: &'static str,
    bytes: &'a [u8],
    allowed: &[(u32, WireType)],
    path: &Path,
) -> Result<Vec<(u32, Raw<'a>)>, ProtobufError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let (tag, wt) = r.key().map_err(|e| wire_err(name, path, e))?;
        let Some((_, want)) = allowed.iter().find(|(t, _)| *t == tag) else {
            return Err(ProtobufError::UnknownField {
                message: name,
                tag,
                path: path.to_string(),
            });
        };
        if wt != *want {
            return Err(ProtobufError::WrongWireType {
                message: name,
                tag,
                path: path.to_string(),
                got: wt.name(),
                expected: want.name(),
            });
        }
        let v = match wt {
            WireType::Varint => Raw::Varint(r.varint().map_err(|e| wire_err(name, path, e))?),
            _ => Raw::Bytes(r.len_delimited().map_err(|e| wire_err(name, path, e))?),
        };
        out.push((tag, v));
    }
    Ok(out)
}

const TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const FIELDS_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1";
const RAW_EXTENSION: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

/// Seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z) since the Unix epoch.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// A special apimachinery type as JSON, and whether it is its zero value.
fn special(ty: &Ty, bytes: &[u8], ctx: &mut Ctx) -> Result<(Value, bool), ProtobufError> {
    let path = &ctx.path;
    match ty {
        Ty::Time | Ty::MicroTime => {
            let micro = matches!(ty, Ty::MicroTime);
            let name = if micro { MICRO_TIME } else { TIME };
            // An empty message is the zero time (Go marshals zero as no bytes).
            if bytes.is_empty() {
                return Ok((Value::Null, true));
            }
            let (mut secs, mut nanos) = (0i64, 0i32);
            for (tag, v) in fields(
                name,
                bytes,
                &[(1, WireType::Varint), (2, WireType::Varint)],
                path,
            )? {
                if let Raw::Varint(v) = v {
                    if tag == 1 {
                        secs = v as i64;
                    } else {
                        nanos = v as i32;
                    }
                }
            }
            // metav1.Time drops the nanoseconds when reading protobuf.
            if !micro {
                nanos = 0;
            }
            if secs == GO_ZERO_TIME && nanos == 0 {
                return Ok((Value::Null, true));
            }
            let s = format_time(secs, nanos, micro).map_err(|reason| invalid(path, reason))?;
            Ok((Value::String(s), false))
        }
        Ty::Duration => {
            let mut nanos = 0i64;
            for (_, v) in fields(DURATION, bytes, &[(1, WireType::Varint)], path)? {
                if let Raw::Varint(v) = v {
                    nanos = v as i64;
                }
            }
            Ok((Value::String(format_duration(nanos)), false))
        }
        Ty::IntOrString => {
            let (mut kind, mut int, mut string) = (0i64, 0i32, String::new());
            let allowed = [
                (1, WireType::Varint),
                (2, WireType::Varint),
                (3, WireType::Len),
            ];
            for (tag, v) in fields(INT_OR_STRING, bytes, &allowed, path)? {
                match (tag, v) {
                    (1, Raw::Varint(v)) => kind = v as i64,
                    (2, Raw::Varint(v)) => int = v as i32,
                    (3, Raw::Bytes(b)) => string = utf8(b, path)?.to_owned(),
                    _ => {}
                }
            }
            match kind {
                0 => Ok((Value::Number(Number::from(int)), int == 0)),
                1 => {
                    let zero = string.is_empty();
                    Ok((Value::String(string), zero))
                }
                other => Err(invalid(
                    path,
                    format!("IntOrString has invalid type {other}"),
                )),
            }
        }
        Ty::Quantity => {
            let mut s = "0".to_owned();
            for (_, v) in fields(QUANTITY, bytes, &[(1, WireType::Len)], path)? {
                if let Raw::Bytes(b) = v {
                    s = utf8(b, path)?.to_owned();
                }
            }
            Ok((Value::String(s), false))
        }
        Ty::FieldsV1 => {
            let mut raw: &[u8] = &[];
            for (_, v) in fields(FIELDS_V1, bytes, &[(1, WireType::Len)], path)? {
                if let Raw::Bytes(b) = v {
                    raw = b;
                }
            }
            if raw.is_empty() {
                return Ok((Value::Null, true));
            }
            let v = serde_json::from_slice(raw)
                .map_err(|e| invalid(path, format!("fieldsV1 is not valid JSON: {e}")))?;
            Ok((v, false))
        }
        Ty::RawExtension => {
            let mut raw: &[u8] = &[];
            for (_, v) in fields(RAW_EXTENSION, bytes, &[(1, WireType::Len)], path)? {
                if let Raw::Bytes(b) = v {
                    raw = b;
                }
            }
            if raw.is_empty() {
                return Ok((Value::Null, true));
            }
            if raw.starts_with(super::MAGIC) {
                let v = super::decode_nested(raw, ctx.depth + 1)?;
                return Ok((v, false));
            }
            let v = serde_json::from_slice(raw).map_err(|e| {
                invalid(
                    &ctx.path,
                    format!("embedded object is neither JSON nor Kubernetes protobuf: {e}"),
                )
            })?;
            Ok((v, false))
        }
        _ => Err(invalid(path, "internal: not a special type")),
    }
}

/// RFC 3339 in UTC as Go formats `metav1.Time` (`2006-01-02T15:04:05Z`) or
/// `metav1.MicroTime` (`2006-01-02T15:04:05.000000Z`).
pub(super) fn format_time(secs: i64, nanos: i32, micro: bool) -> Result<String, String> {
    let ts = jiff::Timestamp::new(secs, 0)
        .map_err(|e| format!("timestamp {secs}s is out of range: {e}"))?;
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    if dt.year() < 0 {
        return Err(format!("timestamp {secs}s is before year 0"));
    }
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micro {
        // Go normalizes nanos outside [0, 1e9) into the seconds; the wire
        // value from Go is always in range, anything else is malformed.
        if !(0..1_000_000_000).contains(&nanos) {
            return Err(format!("nanos {nanos} out of range"));
        }
        s.push_str(&format!(".{:06}", nanos / 1000));
    }
    s.push('Z');
    Ok(s)
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn format_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".to_owned(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (frac, int) = frac(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (frac, secs) = frac(u, 9);
        u = secs;
        let s = format!("{}{}s", u % 60, frac);
        u /= 60;
        if u > 0 {
            let m = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&s);
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// The fraction `v / 10^prec` without trailing zeros (`.5`, or nothing),
/// and the integer part.
fn frac(mut v: u64, prec: u32) -> (String, u64) {
    let mut digits = Vec::new();
    let mut print = false;
    for _ in 0..prec {
        let d = (v % 10) as u8;
        print = print || d != 0;
        if print {
            digits.push(char::from(b'0' + d));
        }
        v /= 10;
    }
    let frac = if print {
        let mut s = String::from(".");
        s.extend(digits.iter().rev());
        s
    } else {
        String::new()
    };
    (frac, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        for (n, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(format_duration(n), s, "{n}");
        }
    }

    fn ctx() -> Ctx {
        Ctx {
            path: Path::default(),
            depth: 0,
        }
    }

    /// `{1: bytes}`, the shape of RawExtension, FieldsV1 and Quantity.
    fn field1(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x0a, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn raw_extensions_embed_json_or_nested_protobuf() {
        let (v, zero) =
            special(&Ty::RawExtension, &field1(br#"{"a":[1]}"#), &mut ctx()).expect("decodes");
        assert_eq!((v, zero), (serde_json::json!({"a": [1]}), false));

        // k8s\0 + Unknown{typeMeta{v1, Namespace}, raw: {metadata: {name: "x"}}}
        let mut nested = b"k8s\0".to_vec();
        nested.extend([
            0x0a, 0x0f, 0x0a, 0x02, b'v', b'1', 0x12, 0x09, b'N', b'a', b'm', b'e', b's', b'p',
            b'a', b'c', b'e', 0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'x',
        ]);
        let (v, _) = special(&Ty::RawExtension, &field1(&nested), &mut ctx()).expect("decodes");
        assert_eq!(
            v,
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
        );
        let mut deep = ctx();
        deep.depth = 100;
        assert_eq!(
            special(&Ty::RawExtension, &field1(&nested), &mut deep),
            Err(ProtobufError::TooDeep)
        );
        assert!(special(&Ty::RawExtension, &field1(b"\x01\x02"), &mut ctx()).is_err());
        assert_eq!(
            special(&Ty::RawExtension, &[], &mut ctx()).expect("decodes"),
            (Value::Null, true)
        );
    }

    #[test]
    fn durations_and_quantities_decode() {
        // {1: 90s in nanoseconds}
        let mut d = vec![0x08];
        let mut n: u64 = 90_000_000_000;
        while n >= 0x80 {
            d.push((n as u8) | 0x80);
            n >>= 7;
        }
        d.push(n as u8);
        let (v, _) = special(&Ty::Duration, &d, &mut ctx()).expect("decodes");
        assert_eq!(v, Value::String("1m30s".to_owned()));
        let (v, _) = special(&Ty::Quantity, &field1(b"250Mi"), &mut ctx()).expect("decodes");
        assert_eq!(v, Value::String("250Mi".to_owned()));
        // An empty Quantity is Go's zero Quantity, "0".
        let (v, _) = special(&Ty::Quantity, &[], &mut ctx()).expect("decodes");
        assert_eq!(v, Value::String("0".to_owned()));
        // Go's zero time, written explicitly, is still the zero time.
        let mut t = vec![0x08];
        let mut n = GO_ZERO_TIME as u64;
        while n >= 0x80 {
            t.push((n as u8) | 0x80);
            n >>= 7;
        }
        t.push(n as u8);
        assert_eq!(
            special(&Ty::Time, &t, &mut ctx()).expect("decodes"),
            (Value::Null, true)
        );
    }

    #[test]
    fn times_match_go() {
        assert_eq!(
            format_time(1_767_323_045, 0, false).expect("decodes"),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            format_time(1_767_323_045, 123_456_789, true).expect("decodes"),
            "2026-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            format_time(0, 0, true).expect("decodes"),
            "1970-01-01T00:00:00.000000Z"
        );
        assert!(format_time(i64::MAX, 0, false).is_err());
        assert!(format_time(0, -1, true).is_err());
    }
}
