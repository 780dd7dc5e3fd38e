//! Request bodies in Kubernetes protobuf (`application/vnd.kubernetes.protobuf`),
//! as kubectl's typed clients send them: the `k8s\0` magic, then a
//! `runtime.Unknown` envelope whose `raw` is the object's own protobuf.
//! [`decode_object`] turns such a body into the JSON object kube-apiserver
//! would have decoded from the equivalent JSON request, so the rest of the
//! API server only ever sees JSON.
//!
//! Owns: the envelope, the kind registry ([`schema::kind`]), the generic
//! wire decoder ([`wire`], [`decode`]) and the static message tables
//! ([`schema`]). It must not touch storage or request routing; responses
//! stay JSON (kubectl accepts them), so there is no encoder here.
//!
//! JSON forms follow the Go types: `metav1.Time` as `2026-01-02T03:04:05Z`,
//! `MicroTime` with microseconds, `IntOrString` as a number or string,
//! `Quantity` as its string, `[]byte` as base64, maps as objects, `Duration`
//! as Go's duration string, `FieldsV1` embedded as JSON. Go writes
//! non-pointer fields to protobuf even when they are zero, so a zero value
//! means "unset" except for pointer fields (and fields serialized without
//! `omitempty`), whose explicit zeros are kept: `replicas: 0` survives,
//! `generateName: ""` does not.

mod decode;
pub mod schema;
mod wire;

use serde_json::{Map, Value};
use thiserror::Error;

use super::status::ApiError;
use decode::{Ctx, Path};
use wire::{Reader, WireType};

/// Content type kube uses for protobuf.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// How deep `RawExtension`s may embed further protobuf objects.
const MAX_DEPTH: usize = 8;

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

/// Why a protobuf body could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtobufError {
    #[error("the body does not start with the Kubernetes protobuf magic \"k8s\\0\"")]
    NoMagic,
    #[error("malformed protobuf in {message} at {path}: {reason}")]
    Malformed {
        message: &'static str,
        path: String,
        reason: String,
    },
    #[error("protobuf message {message} has no field number {tag} (at {path})")]
    UnknownField {
        message: &'static str,
        tag: u32,
        path: String,
    },
    #[error("field {tag} of {message} (at {path}) has wire type {got}, expected {expected}")]
    WrongWireType {
        message: &'static str,
        tag: u32,
        path: String,
        got: &'static str,
        expected: &'static str,
    },
    #[error("invalid value at {path}: {reason}")]
    InvalidValue { path: String, reason: String },
    #[error("Object 'Kind' is missing in the protobuf envelope")]
    MissingKind,
    #[error("embedded objects nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error(
        "protobuf request bodies are not supported for {api_version}, Kind={kind}; send the body as application/json"
    )]
    UnsupportedKind { api_version: String, kind: String },
    #[error(
        "protobuf envelope with contentEncoding {encoding:?} and contentType {content_type:?} is not supported; send the body as application/json"
    )]
    UnsupportedEnvelope {
        encoding: String,
        content_type: String,
    },
}

impl From<ProtobufError> for ApiError {
    fn from(e: ProtobufError) -> Self {
        match e {
            ProtobufError::UnsupportedKind { .. } | ProtobufError::UnsupportedEnvelope { .. } => {
                ApiError::new(415, "UnsupportedMediaType", e.to_string())
            }
            other => ApiError::bad_request(format!(
                "the request body is not a valid protobuf object: {other}"
            )),
        }
    }
}

/// Decodes a Kubernetes protobuf body — the 4-byte magic `k8s\0` followed by a
/// `runtime.Unknown` {typeMeta{apiVersion, kind}, raw, contentEncoding, contentType} whose `raw`
/// is the object's own protobuf — into the JSON object kube-apiserver would have decoded from JSON
/// (apiVersion and kind set from the TypeMeta; field names and value forms exactly as the JSON API:
/// metav1.Time as RFC 3339 `2026-01-02T03:04:05Z`, MicroTime with microseconds, IntOrString as a
/// JSON number or string, resource.Quantity as its string, []byte as base64, maps as objects,
/// Duration as Go's duration string, omit unset optional fields, keep explicitly-set zero values of
/// `optional` proto2 fields since JSON clients can send those too).
/// Unknown kind → 415 UnsupportedMediaType naming the kind and suggesting JSON; malformed bytes → 400 BadRequest.
/// A field tag the schema does not know → 400 BadRequest naming message and tag (never drop data silently).
pub fn decode_object(body: &[u8]) -> Result<Value, ApiError> {
    decode(body).map_err(|e| {
        tracing::debug!(error = %e, bytes = body.len(), "rejected protobuf request body");
        ApiError::from(e)
    })
}

/// [`decode_object`] with the typed error.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_nested(body, 0)
}

/// The envelope as read off the wire.
#[derive(Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn envelope_err(message: &'static str, e: wire::WireError) -> ProtobufError {
    ProtobufError::Malformed {
        message,
        path: "<envelope>".to_owned(),
        reason: e.to_string(),
    }
}

fn envelope_string(message: &'static str, bytes: &[u8]) -> Result<String, ProtobufError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| ProtobufError::Malformed {
            message,
            path: "<envelope>".to_owned(),
            reason: format!("string is not valid UTF-8: {e}"),
        })
}

/// Reads `runtime.Unknown` {1: typeMeta, 2: raw, 3: contentEncoding, 4: contentType}.
fn envelope(bytes: &[u8]) -> Result<Envelope<'_>, ProtobufError> {
    let mut out = Envelope::default();
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (tag, wt) = r.key().map_err(|e| envelope_err(UNKNOWN, e))?;
        if !(1..=4).contains(&tag) {
            return Err(ProtobufError::UnknownField {
                message: UNKNOWN,
                tag,
                path: "<envelope>".to_owned(),
            });
        }
        if wt != WireType::Len {
            return Err(ProtobufError::WrongWireType {
                message: UNKNOWN,
                tag,
                path: "<envelope>".to_owned(),
                got: wt.name(),
                expected: WireType::Len.name(),
            });
        }
        let payload = r.len_delimited().map_err(|e| envelope_err(UNKNOWN, e))?;
        match tag {
            1 => type_meta(payload, &mut out)?,
            2 => out.raw = payload,
            3 => out.content_encoding = envelope_string(UNKNOWN, payload)?,
            _ => out.content_type = envelope_string(UNKNOWN, payload)?,
        }
    }
    Ok(out)
}

/// Reads `runtime.TypeMeta` {1: apiVersion, 2: kind}.
fn type_meta(bytes: &[u8], out: &mut Envelope<'_>) -> Result<(), ProtobufError> {
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        let (tag, wt) = r.key().map_err(|e| envelope_err(TYPE_META, e))?;
        if !(1..=2).contains(&tag) {
            return Err(ProtobufError::UnknownField {
                message: TYPE_META,
                tag,
                path: "<envelope>.typeMeta".to_owned(),
            });
        }
        if wt != WireType::Len {
            return Err(ProtobufError::WrongWireType {
                message: TYPE_META,
                tag,
                path: "<envelope>.typeMeta".to_owned(),
                got: wt.name(),
                expected: WireType::Len.name(),
            });
        }
        let payload = r.len_delimited().map_err(|e| envelope_err(TYPE_META, e))?;
        let s = envelope_string(TYPE_META, payload)?;
        if tag == 1 {
            out.api_version = s;
        } else {
            out.kind = s;
        }
    }
    Ok(())
}

/// Decodes one enveloped object; `depth` counts enclosing `RawExtension`s.
fn decode_nested(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let env = envelope(rest)?;
    let identity = env.content_encoding.is_empty();
    let protobuf = env.content_type.is_empty() || env.content_type == CONTENT_TYPE;
    if !identity || !protobuf {
        return Err(ProtobufError::UnsupportedEnvelope {
            encoding: env.content_encoding,
            content_type: env.content_type,
        });
    }
    if env.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    let Some(msg) = schema::kind(&env.api_version, &env.kind) else {
        return Err(ProtobufError::UnsupportedKind {
            api_version: env.api_version,
            kind: env.kind,
        });
    };
    let mut object = Map::new();
    let mut ctx = Ctx {
        path: Path::default(),
        depth,
    };
    decode::message(msg, env.raw, &mut object, &mut ctx)?;
    // TypeMeta is not part of the object's own protobuf; it comes from the envelope.
    if !env.api_version.is_empty() {
        object.insert(
            "apiVersion".to_owned(),
            Value::String(env.api_version.clone()),
        );
    }
    object.insert("kind".to_owned(), Value::String(env.kind.clone()));
    tracing::debug!(
        api_version = %env.api_version,
        kind = %env.kind,
        bytes = body.len(),
        "decoded protobuf request body"
    );
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests;
