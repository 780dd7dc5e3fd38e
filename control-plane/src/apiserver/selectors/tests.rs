//! Unit tests of label and field selectors: every operator, the canonical
//! form, apimachinery's error wording, escaping, and a fuzz over odd inputs.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::registry;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sel(s: &str) -> LabelSelector {
    match LabelSelector::parse(s) {
        Ok(sel) => sel,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn parse_err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} should not parse, got {sel:?}"),
        Err(e) => {
            assert_eq!((e.code, e.reason), (400, "BadRequest"), "{s:?}");
            e.message
        }
    }
}

fn resource(group: &str, plural: &str) -> &'static Resource {
    match registry::find(group, "v1", plural) {
        Some(r) => r,
        None => panic!("{group}/{plural} not served"),
    }
}

fn fsel(s: &str, plural: &str) -> FieldSelector {
    let group = match plural {
        "replicasets" => "apps",
        "jobs" => "batch",
        _ => "",
    };
    match FieldSelector::parse(s, resource(group, plural)) {
        Ok(sel) => sel,
        Err(e) => panic!("{s:?} should parse for {plural}: {e}"),
    }
}

fn field_err(s: &str, plural: &str) -> String {
    match FieldSelector::parse(s, resource("", plural)) {
        Ok(sel) => panic!("{s:?} should not parse, got {sel:?}"),
        Err(e) => {
            assert_eq!((e.code, e.reason), (400, "BadRequest"), "{s:?}");
            e.message
        }
    }
}

// --- label selectors: operators ---------------------------------------------

#[test]
fn equality_operators() {
    let app_web = labels(&[("app", "web"), ("tier", "front")]);
    let app_db = labels(&[("app", "db")]);
    let none = labels(&[]);
    for s in ["app=web", "app==web", " app = web ", "app\t==\nweb"] {
        let sel = sel(s);
        assert!(sel.matches(&app_web), "{s}");
        assert!(!sel.matches(&app_db), "{s}");
        assert!(!sel.matches(&none), "{s}: = needs the label");
    }
    let ne = sel("app!=web");
    assert!(!ne.matches(&app_web));
    assert!(ne.matches(&app_db));
    assert!(ne.matches(&none), "!= matches objects without the label");
}

#[test]
fn set_operators() {
    let web = labels(&[("env", "prod")]);
    let dev = labels(&[("env", "dev")]);
    let qa = labels(&[("env", "qa")]);
    let none = labels(&[]);
    let in_ = sel("env in (prod, dev)");
    assert!(in_.matches(&web) && in_.matches(&dev));
    assert!(!in_.matches(&qa) && !in_.matches(&none));
    let notin = sel("env notin (prod,dev)");
    assert!(!notin.matches(&web) && !notin.matches(&dev));
    assert!(notin.matches(&qa) && notin.matches(&none));
    // No space before the parenthesis.
    assert!(sel("env in(qa)").matches(&qa));
}

#[test]
fn existence_operators() {
    let with = labels(&[("canary", "")]);
    let without = labels(&[("app", "x")]);
    let exists = sel("canary");
    assert!(exists.matches(&with) && !exists.matches(&without));
    let not = sel("!canary");
    assert!(!not.matches(&with) && not.matches(&without));
    assert!(sel(" ! canary ").matches(&without), "whitespace after !");
}

#[test]
fn numeric_operators() {
    let gt = sel("replicas>3");
    assert!(gt.matches(&labels(&[("replicas", "4")])));
    assert!(!gt.matches(&labels(&[("replicas", "3")])));
    assert!(
        !gt.matches(&labels(&[("replicas", "x")])),
        "non-numeric label"
    );
    assert!(!gt.matches(&labels(&[])), "missing label");
    let lt = sel("replicas<3");
    assert!(lt.matches(&labels(&[("replicas", "2")])));
    assert!(lt.matches(&labels(&[("replicas", "-5")])));
    assert!(!lt.matches(&labels(&[("replicas", "3")])));
    assert!(
        !lt.matches(&labels(&[("replicas", "99999999999999999999")])),
        "out of i64 range does not parse"
    );
}

#[test]
fn comma_is_and() {
    let s = sel("app=web,env in (prod),!canary,replicas>1");
    assert!(s.matches(&labels(&[
        ("app", "web"),
        ("env", "prod"),
        ("replicas", "2")
    ])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("env", "prod"),
        ("replicas", "2"),
        ("canary", "true")
    ])));
    assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod")])));
}

#[test]
fn empty_selector_matches_everything() {
    for s in ["", "   ", "\t\n"] {
        let sel = sel(s);
        assert!(sel.is_empty());
        assert_eq!(sel, LabelSelector::everything());
        assert!(sel.matches(&labels(&[])));
        assert!(sel.matches(&labels(&[("a", "b")])));
        assert_eq!(sel.to_string(), "");
    }
    assert!(!sel("a").is_empty());
}

#[test]
fn keywords_are_identifiers_in_key_and_value_position() {
    let s = sel("in=notin");
    assert!(s.matches(&labels(&[("in", "notin")])));
    let s = sel("notin in (in,notin)");
    assert!(s.matches(&labels(&[("notin", "in")])));
    assert!(!s.matches(&labels(&[("notin", "x")])));
    assert!(
        sel("in").matches(&labels(&[("in", "")])),
        "exists on key `in`"
    );
}

#[test]
fn empty_values() {
    assert!(sel("a=").matches(&labels(&[("a", "")])));
    assert!(!sel("a=").matches(&labels(&[])));
    assert!(sel("a=,b").matches(&labels(&[("a", ""), ("b", "x")])));
    assert!(sel("a in ()").matches(&labels(&[("a", "")])));
    let s = sel("a in (,x)");
    assert!(s.matches(&labels(&[("a", "")])) && s.matches(&labels(&[("a", "x")])));
    assert_eq!(s.to_string(), "a in (,x)");
    assert_eq!(sel("a in (x,)"), s);
    // As in Go: `,,` consumes the second comma, so `)` is then unexpected.
    assert_eq!(
        parse_err("a in (x,,)"),
        "unable to parse requirement: found ')', expected: ',', or identifier"
    );
    assert_eq!(sel("a in (,,x)").to_string(), "a in (,x)");
    assert_eq!(sel("a in (x,,y)").to_string(), "a in (,x,y)");
}

#[test]
fn label_keys_and_values_are_validated() {
    for ok in [
        "example.com/app=x",
        "a.b-c_d=E.f-G_h",
        "k8s.io/x in (a1,b2)",
        "A=B",
        &format!("{}=v", "k".repeat(63)),
        &format!("{}/k=v", "p".repeat(253)),
        &format!("k={}", "v".repeat(63)),
    ] {
        sel(ok);
    }
    let long_key = parse_err(&format!("{}=v", "k".repeat(64)));
    assert!(
        long_key.contains("name part must be no more than 63 characters"),
        "{long_key}"
    );
    let long_value = parse_err(&format!("k={}", "v".repeat(64)));
    assert!(
        long_value.contains("must be no more than 63 characters"),
        "{long_value}"
    );
    let long_prefix = parse_err(&format!("{}/k=v", "p".repeat(254)));
    assert!(
        long_prefix.contains("prefix part must be no more than 253 characters"),
        "{long_prefix}"
    );
    assert!(parse_err("Example.com/app=x").contains("prefix part a lowercase RFC 1123 subdomain"));
    assert!(parse_err("/app=x").contains("prefix part must be non-empty"));
    assert!(parse_err("app/=x").contains("name part must be non-empty"));
    assert!(parse_err("a/b/c=x").contains("a qualified name must consist of"));
    assert!(parse_err("-a=x").contains("name part must consist of"));
    assert!(parse_err("a.=x").contains("name part must consist of"));
    assert!(parse_err("a=-x").contains("a valid label must be an empty string"));
    assert!(parse_err("a in (zz_,ok)").contains("values[1][a]: Invalid value: \"zz_\""));
    assert!(parse_err("é=x").contains("key: Invalid value: \"é\""));
}

#[test]
fn error_messages_read_like_apimachinery() {
    let key_error = parse_err("a@b=c");
    assert_eq!(
        key_error,
        "unable to parse requirement: key: Invalid value: \"a@b\": name part must consist of \
         alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
         character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
         '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    let cases: &[(&str, &str)] = &[
        ("a=b,", "found '', expected: identifier after ','"),
        ("a=b,,c", "found ',', expected: identifier after ','"),
        (
            ",a",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        (
            "(a)",
            "found '(', expected: !, identifier, or 'end of string'",
        ),
        (
            "=a",
            "found '=', expected: !, identifier, or 'end of string'",
        ),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        (
            "a b",
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "a ! b",
            "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier",
        ),
        (
            "!!a",
            "unable to parse requirement: found '!', expected: identifier",
        ),
        (
            "a in x",
            "unable to parse requirement: found 'x' expected: '('",
        ),
        (
            "a in",
            "unable to parse requirement: found '' expected: '('",
        ),
        (
            "a in (x",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        (
            "a in (x y)",
            "unable to parse requirement: found 'y', expected: ',' or ')'",
        ),
        (
            "a in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier",
        ),
        (
            "a in (,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier",
        ),
        (
            "a=(b)",
            "unable to parse requirement: found '(', expected: identifier",
        ),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' \
             operators, the value must be an integer",
        ),
        (
            "a<",
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' \
             operators, the value must be an integer",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(&parse_err(input), want, "input {input:?}");
    }
}

#[test]
fn canonical_form_sorts_by_key_and_values() {
    let s = sel("z=1, a in (y, x),!m,b notin (q,p),c==d,e!=f,g>1,h<2,k");
    assert_eq!(
        s.to_string(),
        "a in (x,y),b notin (p,q),c==d,e!=f,g>1,h<2,k,!m,z=1"
    );
    assert_eq!(sel(&s.to_string()), s);
}

#[test]
fn display_round_trips() {
    for input in [
        "a",
        "!a",
        "a=b",
        "a==b",
        "a!=b",
        "a in (b)",
        "a notin (b,c)",
        "a>10",
        "a<-0",
        "x=,y in (),z in (,q)",
        "example.com/a=b,b=a,a=c",
        "in in (in),notin notin (notin)",
    ] {
        // Parsing may fail (e.g. `a<-0`: values must start alphanumeric);
        // whatever parses must round-trip.
        if let Ok(s) = LabelSelector::parse(input) {
            let text = s.to_string();
            let again = sel(&text);
            assert_eq!(again, s, "{input:?} -> {text:?}");
            assert_eq!(again.to_string(), text);
        }
    }
    // Duplicate keys keep their relative order through sort and round-trip.
    let dup = sel("b=1,a=2,a!=3");
    assert_eq!(dup.to_string(), "a=2,a!=3,b=1");
}

#[test]
fn matches_object_reads_metadata_labels() {
    let s = sel("app=web,!canary");
    assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!s.matches_object(&json!({"metadata": {"labels": {"app": "web", "canary": "1"}}})));
    assert!(!s.matches_object(&json!({"metadata": {}})));
    assert!(!s.matches_object(&json!({})));
    assert!(!s.matches_object(&json!("not an object")));
    // Non-string label values are not labels.
    assert!(!s.matches_object(&json!({"metadata": {"labels": {"app": 1}}})));
    assert!(sel("!app").matches_object(&json!({"metadata": {"labels": null}})));
    assert!(LabelSelector::everything().matches_object(&json!(null)));
}

// --- metav1.LabelSelector ----------------------------------------------------

#[test]
fn from_label_selector_object() {
    let s = LabelSelector::from_label_selector(&json!({
        "matchLabels": {"app": "web", "tier": "front"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "owner", "operator": "Exists", "values": []},
        ],
    }));
    let s = match s {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        s.to_string(),
        "app=web,!canary,env in (dev,prod),owner,tier=front,zone notin (b)"
    );
    assert_eq!(sel(&s.to_string()), s);
    let base = [
        ("app", "web"),
        ("tier", "front"),
        ("env", "dev"),
        ("owner", "me"),
    ];
    assert!(s.matches(&labels(&base)));
    let mut with_zone = base.to_vec();
    with_zone.push(("zone", "b"));
    assert!(!s.matches(&labels(&with_zone)));
    assert!(!s.matches(&labels(&base[..3])), "owner must exist");
}

#[test]
fn from_label_selector_empty_matches_everything() {
    for v in [
        json!({}),
        json!({"matchLabels": {}}),
        json!({"matchLabels": null, "matchExpressions": []}),
    ] {
        let s = match LabelSelector::from_label_selector(&v) {
            Ok(s) => s,
            Err(e) => panic!("{v}: {e}"),
        };
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[("x", "y")])));
    }
}

#[test]
fn from_label_selector_rejects_bad_input() {
    let err = |v: serde_json::Value| match LabelSelector::from_label_selector(&v) {
        Ok(s) => panic!("{v} should be rejected, got {s:?}"),
        Err(e) => {
            assert_eq!(e.code, 400, "{v}");
            e.message
        }
    };
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})),
        "\"Foo\" is not a valid label selector operator"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]})),
        "\"in\" is not a valid label selector operator"
    );
    assert!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}))
            .contains("for 'in', 'notin' operators, values set can't be empty")
    );
    assert!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}))
            .contains("values set must be empty for exists and does not exist")
    );
    assert!(err(json!({"matchLabels": {"a b": "x"}})).starts_with("key: Invalid value: \"a b\""));
    assert!(err(json!({"matchLabels": {"a": "x y"}})).starts_with("values[0][a]: Invalid value"));
    assert!(err(json!({"matchLabels": {"a": 1}})).contains("matchLabels[a] must be a string"));
    assert!(err(json!({"matchLabels": []})).contains("matchLabels must be an object"));
    assert!(err(json!({"matchExpressions": {}})).contains("must be an array"));
    assert!(
        err(json!({"matchExpressions": [1]})).contains("matchExpressions[0]: must be an object")
    );
    assert!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}))
            .contains("values must be strings")
    );
    assert!(
        err(json!({"matchExpressions": [{"operator": "Exists"}]}))
            .contains("key: Invalid value: \"\"")
    );
    assert!(err(json!(null)).contains("expected an object, found null"));
    assert!(err(json!("a=b")).contains("found string"));
    // Several problems in one requirement are aggregated.
    let many = err(json!({"matchExpressions": [{"key": "-", "operator": "In", "values": []}]}));
    assert!(many.starts_with("[key: Invalid value"), "{many}");
}

// --- field selectors ---------------------------------------------------------

#[test]
fn field_operators_and_common_fields() {
    let pod = json!({"metadata": {"name": "web", "namespace": "default"}});
    for s in [
        "metadata.name=web",
        "metadata.name==web",
        "metadata.namespace=default",
    ] {
        assert!(fsel(s, "pods").matches(&pod), "{s}");
    }
    assert!(!fsel("metadata.name!=web", "pods").matches(&pod));
    assert!(fsel("metadata.name!=db", "pods").matches(&pod));
    assert!(fsel("metadata.name=web,metadata.namespace=default", "pods").matches(&pod));
    assert!(!fsel("metadata.name=web,metadata.namespace=kube-system", "pods").matches(&pod));
    // Every kind serves the metadata fields.
    for r in registry::RESOURCES {
        let s = FieldSelector::parse("metadata.name=x,metadata.namespace!=y", r);
        assert!(s.is_ok(), "{}: {:?}", r.plural, s.err());
    }
    // Missing fields read as "".
    assert!(fsel("metadata.namespace=", "nodes").matches(&json!({"metadata": {"name": "n1"}})));
    assert!(!fsel("metadata.namespace!=", "nodes").matches(&json!({"metadata": {"name": "n1"}})));
}

#[test]
fn empty_field_selector_matches_everything() {
    for s in ["", ",", ",,"] {
        let f = fsel(s, "pods");
        assert!(f.is_empty(), "{s:?}");
        assert!(f.matches(&json!({})));
        assert_eq!(f.exact_name(), None);
    }
    let f = FieldSelector::everything();
    assert!(f.is_empty() && f.matches(&json!(null)));
    assert!(!fsel("metadata.name=a", "pods").is_empty());
}

#[test]
fn pod_fields() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                 "serviceAccountName": "sa"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}],
                   "nominatedNodeName": "n2"},
    });
    for s in [
        "spec.nodeName=n1",
        "spec.restartPolicy=Always",
        "spec.schedulerName=default-scheduler",
        "spec.serviceAccountName=sa",
        "spec.hostNetwork=false",
        "spec.hostNetwork!=true",
        "status.phase=Running",
        "status.podIP=10.0.0.5",
        "status.podIPs=10.0.0.5",
        "status.podIPs=fd00::5",
        "status.podIPs!=10.9.9.9",
        "status.nominatedNodeName=n2",
        "spec.nodeName=n1,status.phase!=Pending",
    ] {
        assert!(fsel(s, "pods").matches(&pod), "{s}");
    }
    for s in [
        "spec.nodeName=",
        "spec.hostNetwork=true",
        "status.podIP=fd00::5",
        "status.podIPs=10.9.9.9",
        "status.podIPs!=fd00::5",
        "status.phase=Pending",
    ] {
        assert!(!fsel(s, "pods").matches(&pod), "{s}");
    }
    let host = json!({"spec": {"hostNetwork": true}, "status": {"podIP": "192.168.1.2"}});
    assert!(fsel("spec.hostNetwork=true", "pods").matches(&host));
    assert!(fsel("status.podIP=192.168.1.2", "pods").matches(&host));
    assert!(fsel("status.podIPs=192.168.1.2", "pods").matches(&host));
    let pending = json!({"metadata": {"name": "p"}});
    assert!(fsel("spec.nodeName=", "pods").matches(&pending));
    assert!(fsel("status.podIP=", "pods").matches(&pending));
    assert!(fsel("status.podIPs=", "pods").matches(&pending));
    assert!(!fsel("status.podIPs!=", "pods").matches(&pending));
}

#[test]
fn other_kinds_fields() {
    let event = json!({
        "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u-1",
                           "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
        "reason": "Started", "type": "Normal", "reportingComponent": "kubelet",
    });
    for s in [
        "involvedObject.kind=Pod",
        "involvedObject.namespace=ns",
        "involvedObject.name=p",
        "involvedObject.uid=u-1",
        "involvedObject.apiVersion=v1",
        "involvedObject.resourceVersion=7",
        "involvedObject.fieldPath=spec.containers{c}",
        "reason=Started",
        "reportingComponent=kubelet",
        "source=kubelet",
        "type=Normal",
    ] {
        assert!(fsel(s, "events").matches(&event), "{s}");
    }
    let sourced = json!({"source": {"component": "scheduler"}, "reportingComponent": "kubelet"});
    assert!(fsel("source=scheduler", "events").matches(&sourced));
    assert!(!fsel("source=kubelet", "events").matches(&sourced));

    assert!(
        fsel("type=kubernetes.io/tls", "secrets").matches(&json!({"type": "kubernetes.io/tls"}))
    );
    assert!(fsel("spec.unschedulable=false", "nodes").matches(&json!({"spec": {}})));
    assert!(
        fsel("spec.unschedulable=true", "nodes").matches(&json!({"spec": {"unschedulable": true}}))
    );
    assert!(
        fsel("status.phase=Active", "namespaces").matches(&json!({"status": {"phase": "Active"}}))
    );
    assert!(fsel("status.replicas=3", "replicasets").matches(&json!({"status": {"replicas": 3}})));
    assert!(fsel("status.replicas=0", "replicasets").matches(&json!({"status": {}})));
    assert!(fsel("status.successful=2", "jobs").matches(&json!({"status": {"succeeded": 2}})));
    assert!(fsel("status.successful=0", "jobs").matches(&json!({})));
    assert!(fsel("status.successful!=0", "jobs").matches(&json!({"status": {"succeeded": 1}})));
    let svc = json!({"spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}});
    assert!(fsel("spec.clusterIP=10.96.0.1,spec.type=ClusterIP", "services").matches(&svc));
    assert!(!fsel("spec.type=NodePort", "services").matches(&svc));
}

#[test]
fn unsupported_fields_are_rejected() {
    assert_eq!(
        field_err("spec.foo=x", "pods"),
        "field label not supported: spec.foo"
    );
    assert_eq!(
        field_err("type=Opaque", "configmaps"),
        "field label not supported: type"
    );
    assert_eq!(
        field_err("spec.nodeName=x", "services"),
        "field label not supported: spec.nodeName"
    );
    // Field names are not trimmed, as in apimachinery.
    assert_eq!(
        field_err(" metadata.name=x", "pods"),
        "field label not supported:  metadata.name"
    );
    assert_eq!(field_err("=x", "pods"), "field label not supported: ");
    assert_eq!(
        field_err("metadata.labels.app=x", "pods"),
        "field label not supported: metadata.labels.app"
    );
}

#[test]
fn field_values_unescape() {
    let named = |name: &str| json!({"metadata": {"name": name}});
    assert!(fsel(r"metadata.name=a\,b", "pods").matches(&named("a,b")));
    assert!(fsel(r"metadata.name=a\=b", "pods").matches(&named("a=b")));
    assert!(fsel(r"metadata.name=a\\b", "pods").matches(&named(r"a\b")));
    assert!(fsel(r"metadata.name=a\\", "pods").matches(&named(r"a\")));
    let two = fsel(r"metadata.name=a\,b,metadata.namespace=n", "pods");
    assert!(two.matches(&json!({"metadata": {"name": "a,b", "namespace": "n"}})));
    assert_eq!(two.exact_name(), Some("a,b"));
    assert!(fsel("metadata.name=wéb", "pods").matches(&named("wéb")));
}

#[test]
fn malformed_field_selectors() {
    let cases: &[(&str, &str)] = &[
        (
            "metadata.name",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
        (
            "metadata.name=a,status.phase",
            "invalid selector: 'metadata.name=a,status.phase'; can't understand 'status.phase'",
        ),
        (
            r"metadata.name=a\x",
            r"invalid field selector: invalid escape sequence: \x",
        ),
        (
            r"metadata.name=a\",
            r"invalid field selector: invalid escape sequence: \",
        ),
        (
            "metadata.name=a=b",
            "invalid field selector: unescaped character in value: =",
        ),
        (
            "metadata.name==a=b",
            "invalid field selector: unescaped character in value: =",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(&field_err(input, "pods"), want, "input {input:?}");
    }
    // `!=` is recognised before `==` and `=` at the same position.
    let ne = fsel("metadata.name!=x", "pods");
    assert!(ne.matches(&json!({"metadata": {"name": "y"}})));
    assert_eq!(ne.exact_name(), None);
}

#[test]
fn exact_name() {
    assert_eq!(fsel("metadata.name=web", "pods").exact_name(), Some("web"));
    assert_eq!(fsel("metadata.name==web", "pods").exact_name(), Some("web"));
    assert_eq!(
        fsel("status.phase=Running,metadata.name=web", "pods").exact_name(),
        Some("web")
    );
    assert_eq!(fsel("metadata.name!=web", "pods").exact_name(), None);
    assert_eq!(fsel("metadata.namespace=web", "pods").exact_name(), None);
    assert_eq!(fsel("metadata.name=", "pods").exact_name(), Some(""));
}

// --- fuzz ----------------------------------------------------------------------

/// Every label selector that parses prints to a form that parses back to
/// the same selector and prints identically; nothing panics.
fn check_label_round_trip(input: &str) {
    if let Ok(s) = LabelSelector::parse(input) {
        let text = s.to_string();
        match LabelSelector::parse(&text) {
            Ok(again) => {
                assert_eq!(again, s, "{input:?} -> {text:?}");
                assert_eq!(again.to_string(), text, "{input:?}");
            }
            Err(e) => panic!("{input:?} printed as {text:?}, which does not parse: {e}"),
        }
        let _ = s.matches_object(&json!({"metadata": {"labels": {"a": "1", "in": ""}}}));
    }
}

fn check_field(input: &str) {
    let pods = resource("", "pods");
    if let Ok(f) = FieldSelector::parse(input, pods) {
        let _ =
            f.matches(&json!({"metadata": {"name": "a"}, "status": {"podIPs": [1, {"ip": 2}]}}));
        let _ = f.exact_name();
    }
    let _ = parse_field_terms(input);
}

const PIECES: &[&str] = &[
    "a", "b1", "=", "!", "(", ")", ",", " ", "in", "notin", "<", ">", "-", "/", "\\", "é", "\0",
    "x.y/z",
];

#[test]
fn fuzz_exhaustive_short_inputs() {
    // Every sequence of up to 4 pieces: 18^4 + 18^3 + 18^2 + 18 + 1 ≈ 111k inputs.
    fn walk(prefix: &mut String, depth: usize, parsed: &mut usize) {
        check_label_round_trip(prefix);
        check_field(prefix);
        *parsed += usize::from(LabelSelector::parse(prefix).is_ok());
        if depth == 4 {
            return;
        }
        for piece in PIECES {
            let len = prefix.len();
            prefix.push_str(piece);
            walk(prefix, depth + 1, parsed);
            prefix.truncate(len);
        }
    }
    let mut parsed = 0usize;
    walk(&mut String::new(), 0, &mut parsed);
    assert!(
        parsed > 1000,
        "the fuzz should hit valid selectors too ({parsed})"
    );
}

#[test]
fn fuzz_random_inputs() {
    // A fixed-seed xorshift: reproducible, no extra crates.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> = "ab=!(),<> \t-_./\\0123456789xyzé\u{0}\u{7f}ñ🙂inotIN"
        .chars()
        .collect();
    let mut parsed = 0usize;
    for _ in 0..50_000 {
        let len = (next() % 24) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        check_label_round_trip(&s);
        check_field(&s);
        // Structured-ish inputs reach deeper into the grammar.
        let words = [
            "a", "in", "notin", "=", "!=", "==", "(", ")", ",", "!", "1", ">", "<", "b",
        ];
        let s: String = (0..(next() % 10))
            .map(|_| words[(next() % words.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(if next() % 2 == 0 { " " } else { "" });
        check_label_round_trip(&s);
        check_field(&s);
        parsed += usize::from(LabelSelector::parse(&s).is_ok());
    }
    assert!(
        parsed > 500,
        "the fuzz should hit valid selectors too ({parsed})"
    );
}
