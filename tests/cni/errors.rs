//! VERSION, configs of older spec versions, and bad input: every failure is
//! a CNI error object on stdout with the spec's code and a non-zero exit,
//! never a panic, and allocates nothing.

use anyhow::Result;
use serde_json::json;

use super::*;

#[test]
fn version_lists_the_supported_versions() -> Result<()> {
    let node = Node::new("10.244.30.0/24")?;
    for stdin in ["", r#"{"cniVersion":"1.0.0"}"#, r#"{"cniVersion":"1.1.0"}"#] {
        let v = node.run(&[("CNI_COMMAND", "VERSION")], stdin)?.json()?;
        assert_eq!(
            v,
            json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]})
        );
    }
    Ok(())
}

#[test]
fn older_config_versions_get_results_in_their_version() -> Result<()> {
    let node = Node::new("10.244.31.0/24")?;
    for version in ["0.3.1", "0.4.0"] {
        let pod = Pod::new()?;
        let result = node.cmd("ADD", &pod, &node.config_v(version))?.json()?;
        assert_eq!(result["cniVersion"], version);
        assert_eq!(result["ips"][0]["version"], "4");
        assert_eq!(result["ips"][0]["interface"], 1);
        let mut check = node.config_v(version);
        check["prevResult"] = result.clone();
        let checked = node.cmd("CHECK", &pod, &check)?;
        if version == "0.3.1" {
            // CHECK arrived with 0.4.0.
            let error = checked.error()?;
            assert_eq!(error["code"], 1);
            assert_eq!(error["cniVersion"], "0.3.1");
        } else {
            checked.ok_empty()?;
        }
        node.cmd("DEL", &pod, &node.config_v(version))?.ok_empty()?;
    }
    assert_eq!(node.allocated()?, Vec::<Ipv4Addr>::new());
    Ok(())
}

#[test]
fn bad_environment_and_config_get_the_spec_error_codes() -> Result<()> {
    let node = Node::new("10.244.32.0/24")?;
    let pod = Pod::new()?;
    let netns = pod.netns().display().to_string();
    let config = node.config().to_string();
    let full = Node::env("ADD", &pod.id, Some(&netns));
    let without = |name: &str| -> Vec<(&str, &str)> {
        full.iter().copied().filter(|(k, _)| *k != name).collect()
    };
    let replaced = |name: &'static str, value: &'static str| -> Vec<(&str, &str)> {
        let mut env = without(name);
        env.push((name, value));
        env
    };
    let not_a_netns = node.data.path().join("plain-file");
    std::fs::write(&not_a_netns, "")?;
    let not_a_netns = not_a_netns.display().to_string();
    let mut with_file_netns = without("CNI_NETNS");
    with_file_netns.push(("CNI_NETNS", &not_a_netns));

    // Invalid environment: 4.
    let env_cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no CNI_COMMAND", without("CNI_COMMAND")),
        ("unknown CNI_COMMAND", replaced("CNI_COMMAND", "BOGUS")),
        ("no CNI_CONTAINERID", without("CNI_CONTAINERID")),
        (
            "bad CNI_CONTAINERID",
            replaced("CNI_CONTAINERID", "../../etc"),
        ),
        ("no CNI_IFNAME", without("CNI_IFNAME")),
        (
            "too long CNI_IFNAME",
            replaced("CNI_IFNAME", "eth0123456789abcdef"),
        ),
        ("no CNI_PATH", without("CNI_PATH")),
        ("no CNI_NETNS", without("CNI_NETNS")),
        (
            "missing CNI_NETNS",
            replaced("CNI_NETNS", "/run/netns/kt-no-such-netns"),
        ),
        ("CNI_NETNS not a netns", with_file_netns),
        ("malformed CNI_ARGS", replaced("CNI_ARGS", "K8S_POD_NAME")),
    ];
    for (what, env) in &env_cases {
        let out = node.run(env, &config)?;
        assert_eq!(out.code()?, 4, "{what}: {out:?}");
    }

    // Config problems: 1 (version), 6 (decoding), 7 (validation). Each
    // variant changes (or, with null, removes) fields of a good config.
    let changed = |changes: &[(&str, Value)]| -> String {
        let mut c = node.config();
        for (key, value) in changes {
            match (value, c.as_object_mut()) {
                (Value::Null, Some(o)) => {
                    o.remove(*key);
                }
                (value, _) => c[*key] = value.clone(),
            }
        }
        c.to_string()
    };
    let cases: Vec<(&str, String, u64, &str)> = vec![
        ("not JSON", "{\"cniVersion\": ".to_owned(), 6, "1.0.0"),
        ("empty stdin", String::new(), 6, "1.0.0"),
        ("a JSON array", "[]".to_owned(), 6, "1.0.0"),
        (
            "unsupported cniVersion",
            changed(&[("cniVersion", json!("9.9.9"))]),
            1,
            "1.0.0",
        ),
        (
            "no cniVersion",
            changed(&[("cniVersion", Value::Null)]),
            1,
            "1.0.0",
        ),
        (
            "mtu not a number",
            changed(&[("mtu", json!("big"))]),
            6,
            "1.0.0",
        ),
        (
            "podCIDR not a string",
            changed(&[("podCIDR", json!(42))]),
            6,
            "1.0.0",
        ),
        (
            "podCIDR not a CIDR",
            changed(&[("podCIDR", json!("10.244.0.0/99"))]),
            7,
            "1.0.0",
        ),
        (
            "podCIDR with host bits",
            changed(&[("podCIDR", json!("10.244.32.9/24"))]),
            7,
            "1.0.0",
        ),
        (
            "no podCIDR",
            changed(&[("podCIDR", Value::Null)]),
            7,
            "1.0.0",
        ),
        ("mtu too small", changed(&[("mtu", json!(20))]), 7, "1.0.0"),
        (
            "bad network name",
            changed(&[("name", json!("../../tmp"))]),
            7,
            "1.0.0",
        ),
        (
            "relative dataDir",
            changed(&[("dataDir", json!("var/lib"))]),
            7,
            "1.0.0",
        ),
        (
            "a 0.4.0 config with a bad podCIDR (the error in its version)",
            changed(&[("cniVersion", json!("0.4.0")), ("podCIDR", json!("nope"))]),
            7,
            "0.4.0",
        ),
    ];
    for (what, stdin, code, version) in &cases {
        let out = node.run(&full, stdin)?;
        let error = out.error()?;
        assert_eq!(error["code"], *code, "{what}: {error}");
        assert_eq!(error["cniVersion"], *version, "{what}: {error}");
    }

    // None of it allocated anything or made links.
    assert_eq!(node.allocated()?, Vec::<Ipv4Addr>::new());
    assert!(link_info(&pod.ns, "eth0").is_none());
    assert!(!node.ns.ip(&["-o", "link", "show"])?.contains("kc"));
    Ok(())
}
