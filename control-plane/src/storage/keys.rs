//! The one place that builds store keys, in kube-apiserver's layout:
//! `/registry/<group>/<resource>/[<namespace>/]<name>`. The core group is
//! written as `core` (kube-apiserver omits it; we keep paths uniform).

/// Root of every key.
pub const ROOT: &str = "/registry/";

/// The key prefix of all objects of a resource, in one namespace or in all
/// (`namespace = None`); ends with `/`.
pub fn prefix(group: &str, resource: &str, namespace: Option<&str>) -> String {
    let group = if group.is_empty() { "core" } else { group };
    match namespace {
        Some(ns) => format!("{ROOT}{group}/{resource}/{ns}/"),
        None => format!("{ROOT}{group}/{resource}/"),
    }
}

/// The key of one object (`namespace = None` for cluster-scoped kinds).
pub fn object(group: &str, resource: &str, namespace: Option<&str>, name: &str) -> String {
    let mut key = prefix(group, resource, namespace);
    key.push_str(name);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_kubernetes() {
        assert_eq!(
            object("", "pods", Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        assert_eq!(
            object("", "namespaces", None, "demo"),
            "/registry/core/namespaces/demo"
        );
        assert_eq!(
            prefix("apps", "deployments", None),
            "/registry/apps/deployments/"
        );
    }
}
