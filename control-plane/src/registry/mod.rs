//! The one table of kinds the API server serves: group, version, kind,
//! plural, singular, short names, scope, verbs and subresources. Routing,
//! discovery, storage keys and validation all read this table.

/// Verbs of a fully writable resource.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource.
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; "" is the core (legacy) group served under `/api`.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    /// Subresources such as `status`, `scale`, `binding`.
    pub subresources: &'static [&'static str],
    pub categories: &'static [&'static str],
}

impl Resource {
    /// `v1` for core, else `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The list kind, e.g. `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }

    /// Whether this resource has a `status` stanza that only `/status` writes.
    pub fn has_status(&self) -> bool {
        self.has_subresource("status")
    }
}

macro_rules! resource {
    ($group:literal, $version:literal, $kind:literal, $plural:literal, $singular:literal,
     short: [$($short:literal),*], namespaced: $ns:literal, sub: [$($sub:literal),*],
     cat: [$($cat:literal),*]) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            short_names: &[$($short),*],
            namespaced: $ns,
            verbs: ALL_VERBS,
            subresources: &[$($sub),*],
            categories: &[$($cat),*],
        }
    };
}

/// Every served resource, in discovery order.
pub static RESOURCES: &[Resource] = &[
    resource!("", "v1", "Namespace", "namespaces", "namespace", short: ["ns"], namespaced: false, sub: ["status", "finalize"], cat: []),
    resource!("", "v1", "Pod", "pods", "pod", short: ["po"], namespaced: true, sub: ["status", "binding", "log"], cat: ["all"]),
    resource!("", "v1", "Service", "services", "service", short: ["svc"], namespaced: true, sub: ["status"], cat: ["all"]),
    resource!("", "v1", "Endpoints", "endpoints", "endpoints", short: ["ep"], namespaced: true, sub: [], cat: []),
    resource!("", "v1", "Node", "nodes", "node", short: ["no"], namespaced: false, sub: ["status"], cat: []),
    resource!("", "v1", "ConfigMap", "configmaps", "configmap", short: ["cm"], namespaced: true, sub: [], cat: []),
    resource!("", "v1", "Secret", "secrets", "secret", short: [], namespaced: true, sub: [], cat: []),
    resource!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", short: ["sa"], namespaced: true, sub: [], cat: []),
    resource!("", "v1", "Event", "events", "event", short: ["ev"], namespaced: true, sub: [], cat: []),
    resource!("apps", "v1", "Deployment", "deployments", "deployment", short: ["deploy"], namespaced: true, sub: ["status", "scale"], cat: ["all"]),
    resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", short: ["rs"], namespaced: true, sub: ["status", "scale"], cat: ["all"]),
    resource!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", short: ["ds"], namespaced: true, sub: ["status"], cat: ["all"]),
    resource!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", short: ["sts"], namespaced: true, sub: ["status", "scale"], cat: ["all"]),
    resource!("batch", "v1", "Job", "jobs", "job", short: [], namespaced: true, sub: ["status"], cat: ["all"]),
    resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", short: [], namespaced: true, sub: [], cat: []),
    resource!("coordination.k8s.io", "v1", "Lease", "leases", "lease", short: [], namespaced: true, sub: [], cat: []),
];

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `kind` in `group` (any version).
pub fn find_kind(group: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// Served groups other than core, each with its versions, in table order.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => versions.push(r.version),
            Some(_) => {}
            None => groups.push((r.group, vec![r.version])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_unique_plurals_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{} served twice",
                    a.plural
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            find("apps", "v1", "deployments").map(|r| r.kind),
            Some("Deployment")
        );
        assert_eq!(find("", "v1", "deployments"), None);
        assert_eq!(
            find_kind("", "Pod").map(|r| r.api_version()),
            Some("v1".to_owned())
        );
        assert_eq!(
            groups().iter().map(|(g, _)| *g).collect::<Vec<_>>(),
            ["apps", "batch", "discovery.k8s.io", "coordination.k8s.io"]
        );
    }
}
