//! The static schema the protobuf decoder walks: for every message of the
//! supported kinds, its field numbers, JSON names and value types, as
//! Kubernetes' `generated.proto` files define them (field numbers) and as
//! the Go types serialize them to JSON (names, inlining, which zero values
//! are meaningful). One `static` per message, grouped by API group.
//!
//! This module owns only data; the wire decoding lives in
//! [`super::decode`]. It must not encode JSON semantics beyond the per-field
//! flags below.

pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod meta;
pub mod policy;

/// One protobuf message: its fully qualified proto name (for errors) and
/// its fields, sorted by tag.
#[derive(Debug)]
pub struct Msg {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Msg {
    /// The field with protobuf number `tag`.
    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .and_then(|i| self.fields.get(i))
    }
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// The JSON name; for [`Ty::Inline`] the Go field name (only shown in errors).
    pub name: &'static str,
    pub ty: Ty,
    pub repeated: bool,
    /// Emit the value even when it is the zero value (`""`, `0`, `false`).
    /// Set for Go pointer fields (`*int32`, `*string`, ...), where an explicit
    /// zero differs from unset, and for fields serialized without `omitempty`.
    /// Go writes non-pointer fields to protobuf even when they are zero, so
    /// for the others a zero on the wire means "unset" and is left out.
    pub keep_zero: bool,
}

/// What a field holds and how it becomes JSON.
#[derive(Debug)]
pub enum Ty {
    Str,
    /// `[]byte`: base64 in JSON.
    Bytes,
    I32,
    I64,
    Bool,
    /// A nested message, a JSON object of its own.
    Msg(&'static Msg),
    /// A nested message whose fields are inlined into the parent object
    /// (Go's `json:",inline"`, e.g. `Volume.volumeSource`).
    Inline(&'static Msg),
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>` (base64 values).
    MapBytes,
    /// `map<string, resource.Quantity>` (`ResourceList`).
    MapQuantity,
    /// `map<string, Msg>`.
    MapMsg(&'static Msg),
    /// `metav1.Time`: RFC 3339, whole seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: Go duration string.
    Duration,
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `resource.Quantity`: its string form.
    Quantity,
    /// `metav1.FieldsV1`: raw JSON bytes, embedded as JSON.
    FieldsV1,
    /// `runtime.RawExtension`: an embedded object (JSON or `k8s\0` protobuf).
    RawExtension,
}

/// A singular field whose zero value is left out.
pub const fn f(tag: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        name,
        ty,
        repeated: false,
        keep_zero: false,
    }
}

/// A singular field whose zero value is kept (pointer or non-`omitempty`).
pub const fn keep(tag: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        name,
        ty,
        repeated: false,
        keep_zero: true,
    }
}

/// A repeated field (JSON array).
pub const fn rep(tag: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        tag,
        name,
        ty,
        repeated: true,
        keep_zero: true,
    }
}

/// A message.
pub const fn msg(name: &'static str, fields: &'static [Field]) -> Msg {
    Msg { name, fields }
}

/// The message of `apiVersion`/`kind`, when supported.
pub fn kind(api_version: &str, kind: &str) -> Option<&'static Msg> {
    // DeleteOptions is registered in every group version.
    if kind == "DeleteOptions" {
        return Some(&meta::DELETE_OPTIONS);
    }
    Some(match (api_version, kind) {
        ("v1", "Namespace") => &core::NAMESPACE,
        ("v1", "ConfigMap") => &core::CONFIG_MAP,
        ("v1", "Secret") => &core::SECRET,
        ("v1", "ServiceAccount") => &core::SERVICE_ACCOUNT,
        ("v1", "Service") => &core::SERVICE,
        ("v1", "Pod") => &core::POD,
        ("v1", "Endpoints") => &core::ENDPOINTS,
        ("v1", "Node") => &core::NODE,
        ("v1", "Event") => &core::EVENT,
        ("v1", "Binding") => &core::BINDING,
        ("apps/v1", "Deployment") => &apps::DEPLOYMENT,
        ("apps/v1", "ReplicaSet") => &apps::REPLICA_SET,
        ("apps/v1", "DaemonSet") => &apps::DAEMON_SET,
        ("apps/v1", "StatefulSet") => &apps::STATEFUL_SET,
        ("batch/v1", "Job") => &batch::JOB,
        ("discovery.k8s.io/v1", "EndpointSlice") => &discovery::ENDPOINT_SLICE,
        ("coordination.k8s.io/v1", "Lease") => &coordination::LEASE,
        ("policy/v1" | "policy/v1beta1", "Eviction") => &policy::EVICTION,
        ("autoscaling/v1", "Scale") => &autoscaling::SCALE,
        _ => return None,
    })
}

/// Every supported `(apiVersion, kind)`, for documentation and tests.
pub const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("v1", "Endpoints"),
    ("v1", "Node"),
    ("v1", "Event"),
    ("v1", "Binding"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("coordination.k8s.io/v1", "Lease"),
    ("meta.k8s.io/v1", "DeleteOptions"),
    ("policy/v1", "Eviction"),
    ("autoscaling/v1", "Scale"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn walk(m: &'static Msg, seen: &mut HashSet<&'static str>, out: &mut Vec<&'static Msg>) {
        if !seen.insert(m.name) {
            return;
        }
        out.push(m);
        for f in m.fields {
            match f.ty {
                Ty::Msg(sub) | Ty::Inline(sub) | Ty::MapMsg(sub) => walk(sub, seen, out),
                _ => {}
            }
        }
    }

    fn all_messages() -> Vec<&'static Msg> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (v, k) in KINDS {
            let m = kind(v, k).expect("every listed kind resolves");
            walk(m, &mut seen, &mut out);
        }
        out
    }

    #[test]
    fn tables_are_sorted_by_tag_without_duplicates() {
        let all = all_messages();
        assert!(all.len() > 200, "only {} messages reachable", all.len());
        for m in all {
            for w in m.fields.windows(2) {
                assert!(
                    w[0].tag < w[1].tag,
                    "{}: field {} ({}) is not before {} ({})",
                    m.name,
                    w[0].tag,
                    w[0].name,
                    w[1].tag,
                    w[1].name
                );
            }
        }
    }

    #[test]
    fn json_names_are_unique_per_object_including_inlined_fields() {
        fn names(m: &'static Msg, out: &mut Vec<&'static str>) {
            for f in m.fields {
                match f.ty {
                    Ty::Inline(sub) => names(sub, out),
                    _ => out.push(f.name),
                }
            }
        }
        for m in all_messages() {
            let mut v = Vec::new();
            names(m, &mut v);
            let set: HashSet<_> = v.iter().collect();
            assert_eq!(
                set.len(),
                v.len(),
                "{} has duplicate JSON names: {v:?}",
                m.name
            );
        }
    }

    #[test]
    fn unknown_kinds_do_not_resolve() {
        assert!(kind("v1", "Frobnicator").is_none());
        assert!(kind("apps/v2", "Deployment").is_none());
        assert!(kind("v1", "DeleteOptions").is_some());
        assert!(kind("apps/v1", "DeleteOptions").is_some());
    }
}
