//! The CNI environment of one invocation (`CNI_COMMAND`, `CNI_CONTAINERID`,
//! `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`), read and validated
//! as the spec and libcni's `skel` do. Pure: the variables come through a
//! lookup function, so the rules are unit-tested without a process.

use std::path::PathBuf;

use super::error::CniError;

/// `CNI_COMMAND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Version => "VERSION",
        }
    }
}

/// The validated environment of an ADD, DEL or CHECK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub container_id: String,
    /// The pod's network namespace (a path such as `/var/run/netns/cni-…`).
    /// Always set for ADD and CHECK; optional for DEL.
    pub netns: Option<PathBuf>,
    /// The interface name inside the pod (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS`: `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, … in order.
    pub args: Vec<(String, String)>,
}

impl Invocation {
    /// `namespace/name` of the pod from `CNI_ARGS`, when the runtime is a
    /// kubelet-driven one that sets them.
    pub fn pod(&self) -> Option<String> {
        let get = |key: &str| {
            self.args
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        Some(format!(
            "{}/{}",
            get("K8S_POD_NAMESPACE")?,
            get("K8S_POD_NAME")?
        ))
    }
}

/// Reads `CNI_COMMAND` alone (VERSION needs nothing else).
pub fn command(var: &dyn Fn(&str) -> Option<String>) -> Result<Command, CniError> {
    match var("CNI_COMMAND").as_deref() {
        Some("ADD") => Ok(Command::Add),
        Some("DEL") => Ok(Command::Del),
        Some("CHECK") => Ok(Command::Check),
        Some("VERSION") => Ok(Command::Version),
        Some(other) => Err(CniError::InvalidEnvironment(format!(
            "unknown CNI_COMMAND {other:?} (this plugin knows ADD, DEL, CHECK and VERSION)"
        ))),
        None => Err(CniError::InvalidEnvironment(
            "CNI_COMMAND is not set".to_owned(),
        )),
    }
}

/// Reads and validates everything ADD, DEL and CHECK need.
pub fn invocation(
    command: Command,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Invocation, CniError> {
    let required = |name: &str| -> Result<String, CniError> {
        var(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            CniError::InvalidEnvironment(format!("{name} is required for {}", command.as_str()))
        })
    };
    let container_id = required("CNI_CONTAINERID")?;
    validate_container_id(&container_id)?;
    let ifname = required("CNI_IFNAME")?;
    validate_ifname(&ifname)?;
    // Kept for the spec's sake: this plugin delegates to no other plugin,
    // but a runtime that sets no CNI_PATH is misconfigured.
    required("CNI_PATH")?;
    let netns = match command {
        Command::Add | Command::Check => Some(PathBuf::from(required("CNI_NETNS")?)),
        _ => var("CNI_NETNS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
    };
    let args = parse_args(&var("CNI_ARGS").unwrap_or_default())?;
    Ok(Invocation {
        command,
        container_id,
        netns,
        ifname,
        args,
    })
}

/// The spec: a container id is non-empty, starts alphanumeric and holds
/// only alphanumerics, `_`, `.` and `-`.
fn validate_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidEnvironment(format!(
            "CNI_CONTAINERID {id:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        )))
    }
}

/// The spec: at most 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidEnvironment(format!(
            "CNI_IFNAME {name:?} is not a valid interface name (1-15 bytes, no '/', ':' or spaces, not '.' or '..')"
        )))
    }
}

/// `CNI_ARGS`: `KEY=VALUE` pairs separated by `;`.
fn parse_args(raw: &str) -> Result<Vec<(String, String)>, CniError> {
    raw.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    CniError::InvalidEnvironment(format!(
                        "CNI_ARGS entry {pair:?} is not KEY=VALUE"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cni::error::code;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/var/run/netns/cni-1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=u",
        ),
    ];

    #[test]
    fn a_full_add_environment_parses() {
        let var = vars(FULL);
        let cmd = command(&var).unwrap();
        let inv = invocation(cmd, &var).unwrap();
        assert_eq!(inv.command, Command::Add);
        assert_eq!(inv.container_id, "abc123");
        assert_eq!(inv.netns, Some(PathBuf::from("/var/run/netns/cni-1")));
        assert_eq!(inv.ifname, "eth0");
        assert_eq!(inv.pod().as_deref(), Some("shop/web-0"));
        assert_eq!(inv.args.len(), 4);
    }

    #[test]
    fn missing_or_invalid_variables_are_code_4() {
        let without = |name: &str| {
            let pairs: Vec<_> = FULL.iter().copied().filter(|(k, _)| *k != name).collect();
            let var = vars(&pairs);
            command(&var).and_then(|c| invocation(c, &var))
        };
        for name in [
            "CNI_COMMAND",
            "CNI_CONTAINERID",
            "CNI_NETNS",
            "CNI_IFNAME",
            "CNI_PATH",
        ] {
            let err = without(name).unwrap_err();
            assert_eq!(err.code(), code::INVALID_ENVIRONMENT, "{name}");
        }
        // DEL may come without a netns (it may already be gone).
        let mut pairs: Vec<_> = FULL
            .iter()
            .copied()
            .filter(|(k, _)| *k != "CNI_NETNS")
            .collect();
        pairs[0] = ("CNI_COMMAND", "DEL");
        let var = vars(&pairs);
        assert_eq!(invocation(Command::Del, &var).unwrap().netns, None);

        for (name, value) in [
            ("CNI_COMMAND", "GC"),
            ("CNI_CONTAINERID", "-leading-dash"),
            ("CNI_CONTAINERID", "has/slash"),
            ("CNI_IFNAME", "averyveryverylongname"),
            ("CNI_IFNAME", "eth 0"),
            ("CNI_IFNAME", ".."),
            ("CNI_IFNAME", "a/b"),
            ("CNI_ARGS", "K8S_POD_NAME"),
            ("CNI_ARGS", "=x"),
        ] {
            let mut pairs: Vec<_> = FULL.iter().copied().filter(|(k, _)| *k != name).collect();
            pairs.push((name, value));
            let var = vars(&pairs);
            let err = command(&var).and_then(|c| invocation(c, &var)).unwrap_err();
            assert_eq!(err.code(), code::INVALID_ENVIRONMENT, "{name}={value}");
        }
    }

    #[test]
    fn pod_needs_both_namespace_and_name() {
        let mut inv = invocation(Command::Add, &vars(FULL)).unwrap();
        inv.args.retain(|(k, _)| k != "K8S_POD_NAME");
        assert_eq!(inv.pod(), None);
    }
}
