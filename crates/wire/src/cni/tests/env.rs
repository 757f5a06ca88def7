//! The CNI environment: `CNI_*` variables parsed and checked per verb.

use super::*;

// ---- environment ----

#[test]
fn add_environment_parses() {
    let env = env_of(&with(
        add_env(),
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=5f1c;K8S_POD_INFRA_CONTAINER_ID=3f2c1a9e8b7d",
    ))
    .unwrap();
    assert_eq!(env.command, CniCommand::Add);
    assert_eq!(env.container_id.as_deref(), Some("3f2c1a9e8b7d"));
    assert_eq!(env.netns.as_deref(), Some("/var/run/netns/blue"));
    assert_eq!(env.ifname.as_deref(), Some("eth0"));
    assert_eq!(env.path, vec!["/opt/cni/bin", "/usr/lib/cni"]);
    assert!(env.args.ignore_unknown());
    assert_eq!(env.args.k8s_pod_namespace(), Some("default"));
    assert_eq!(env.args.k8s_pod_name(), Some("web-0"));
    assert_eq!(env.args.k8s_pod_uid(), Some("5f1c"));
    assert_eq!(env.args.k8s_pod_infra_container_id(), Some("3f2c1a9e8b7d"));
}

#[test]
fn command_is_required_and_exact() {
    assert_code(env_of(&[]), ErrorCode::InvalidEnvironment, "CNI_COMMAND is missing");
    assert_code(
        env_of(&[("CNI_COMMAND", "")]),
        ErrorCode::InvalidEnvironment,
        "CNI_COMMAND is missing",
    );
    assert_code(
        env_of(&[("CNI_COMMAND", "add")]),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_COMMAND \"add\"",
    );
    for (name, command) in [
        ("ADD", CniCommand::Add),
        ("DEL", CniCommand::Del),
        ("CHECK", CniCommand::Check),
        ("VERSION", CniCommand::Version),
        ("GC", CniCommand::Gc),
        ("STATUS", CniCommand::Status),
    ] {
        assert_eq!(name.parse::<CniCommand>().unwrap(), command);
        assert_eq!(command.to_string(), name);
    }
}

#[test]
fn required_variables_per_command() {
    assert_code(
        env_of(&[("CNI_COMMAND", "ADD")]),
        ErrorCode::InvalidEnvironment,
        "required environment variables missing for ADD: CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME",
    );
    assert_code(
        env_of(&without(add_env(), "CNI_NETNS")),
        ErrorCode::InvalidEnvironment,
        "missing for ADD: CNI_NETNS",
    );
    assert_code(
        env_of(&with(without(add_env(), "CNI_NETNS"), "CNI_COMMAND", "CHECK")),
        ErrorCode::InvalidEnvironment,
        "missing for CHECK: CNI_NETNS",
    );
    // DEL works without the namespace (it may be gone already), also when
    // the runtime exports it empty.
    let del = with(without(add_env(), "CNI_NETNS"), "CNI_COMMAND", "DEL");
    assert_eq!(env_of(&del).unwrap().netns, None);
    assert_eq!(env_of(&with(del.clone(), "CNI_NETNS", "")).unwrap().netns, None);
    assert_code(
        env_of(&without(del, "CNI_IFNAME")),
        ErrorCode::InvalidEnvironment,
        "missing for DEL: CNI_IFNAME",
    );
    // CNI_PATH is optional except for GC.
    assert!(env_of(&without(add_env(), "CNI_PATH")).is_ok());
    assert_code(
        env_of(&[("CNI_COMMAND", "GC")]),
        ErrorCode::InvalidEnvironment,
        "missing for GC: CNI_PATH",
    );
    assert!(env_of(&[("CNI_COMMAND", "GC"), ("CNI_PATH", "/opt/cni/bin")]).is_ok());
    assert!(env_of(&[("CNI_COMMAND", "STATUS")]).is_ok());
    assert!(env_of(&[("CNI_COMMAND", "VERSION")]).is_ok());
}

#[test]
fn attachment_variables_are_not_checked_for_gc_and_status() {
    let env = env_of(&[
        ("CNI_COMMAND", "STATUS"),
        ("CNI_CONTAINERID", "-bad id"),
        ("CNI_IFNAME", "much-too-long-name"),
    ])
    .unwrap();
    assert_eq!(env.command, CniCommand::Status);
}

#[test]
fn container_id_rules() {
    for good in ["a", "3f2c1a9e8b7d", "A_b.c-1", "0"] {
        assert!(validate_container_id(good).is_ok(), "{good}");
    }
    for bad in ["", "-abc", "_abc", ".abc", "a b", "a/b", "a:b", "cont\u{e4}iner", "a\n"] {
        assert_code(
            validate_container_id(bad),
            ErrorCode::InvalidEnvironment,
            "invalid CNI_CONTAINERID",
        );
    }
    assert_code(
        env_of(&with(add_env(), "CNI_CONTAINERID", "bad/id")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_CONTAINERID \"bad/id\"",
    );
}

#[test]
fn ifname_rules() {
    for good in ["eth0", "e", "net1", "a.b-c_d", "exactly15chars_"] {
        assert!(validate_ifname(good).is_ok(), "{good}");
    }
    let cases = [
        ("", "must not be empty"),
        ("sixteen_chars_xx", "16 bytes long, at most 15"),
        (".", "must not be \".\" or \"..\""),
        ("..", "must not be \".\" or \"..\""),
        ("eth/0", "'/', ':' or whitespace"),
        ("eth:0", "'/', ':' or whitespace"),
        ("eth 0", "'/', ':' or whitespace"),
        ("eth\t0", "'/', ':' or whitespace"),
    ];
    for (bad, why) in cases {
        assert_code(validate_ifname(bad), ErrorCode::InvalidEnvironment, why);
    }
    assert_code(
        env_of(&with(add_env(), "CNI_IFNAME", "eth:0")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_IFNAME \"eth:0\"",
    );
}

#[test]
fn netns_must_be_absolute() {
    assert_code(
        env_of(&with(add_env(), "CNI_NETNS", "netns/blue")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_NETNS \"netns/blue\": must be an absolute path",
    );
    assert!(env_of(&with(add_env(), "CNI_NETNS", "/proc/1234/ns/net")).is_ok());
}

#[test]
fn cni_args_parsing() {
    let args = CniArgs::parse("FOO=BAR;ABC=123;").unwrap();
    assert_eq!(args.pairs().len(), 2);
    assert_eq!(args.get("FOO"), Some("BAR"));
    assert_eq!(args.get("ABC"), Some("123"));
    assert_eq!(args.to_string(), "FOO=BAR;ABC=123");
    assert!(CniArgs::parse("").unwrap().is_empty());

    let args = CniArgs::parse("K=first;IP=10.0.0.5/24;K=second;EMPTY=;EQ=a=b").unwrap();
    assert_eq!(args.get("K"), Some("second"));
    assert_eq!(args.get("EMPTY"), Some(""));
    assert_eq!(args.get("EQ"), Some("a=b"));
    assert_eq!(args.to_map().len(), 4);

    assert_code(
        CniArgs::parse("FOO"),
        ErrorCode::InvalidEnvironment,
        "CNI_ARGS: \"FOO\" is not KEY=VALUE",
    );
    assert_code(CniArgs::parse("=x"), ErrorCode::InvalidEnvironment, "CNI_ARGS: bad key");
    assert_code(
        CniArgs::parse("IgnoreUnknown=maybe"),
        ErrorCode::InvalidEnvironment,
        "IgnoreUnknown=\"maybe\" is not a boolean",
    );
    assert_code(
        env_of(&with(add_env(), "CNI_ARGS", "A=1;B")),
        ErrorCode::InvalidEnvironment,
        "invalid CNI_ARGS",
    );
}

#[test]
fn cni_args_unknown_keys() {
    let known = [CniArgs::K8S_POD_NAMESPACE, CniArgs::K8S_POD_NAME];
    let args = CniArgs::parse("K8S_POD_NAMESPACE=ns;FOO=1;BAR=2").unwrap();
    assert_eq!(args.unknown_keys(&known), vec!["FOO", "BAR"]);
    assert_code(
        args.check_known(&known),
        ErrorCode::InvalidEnvironment,
        "unknown CNI_ARGS keys: FOO, BAR",
    );
    for flag in ["1", "true", "True", "TRUE"] {
        let args = CniArgs::parse(&format!("IgnoreUnknown={flag};FOO=1")).unwrap();
        assert!(args.ignore_unknown());
        assert!(args.check_known(&known).is_ok());
    }
    let args = CniArgs::parse("IgnoreUnknown=0;FOO=1").unwrap();
    assert!(!args.ignore_unknown());
    assert!(args.check_known(&known).is_err());
    assert!(CniArgs::parse("IgnoreUnknown=false;K8S_POD_NAME=x")
        .unwrap()
        .check_known(&known)
        .is_ok());
}

#[test]
fn cni_args_from_map() {
    let map = [("K8S_POD_NAME".to_string(), "web".to_string())].into();
    assert_eq!(CniArgs::from_map(&map).unwrap().k8s_pod_name(), Some("web"));
    let bad = [("".to_string(), "x".to_string())].into();
    assert_code(CniArgs::from_map(&bad), ErrorCode::InvalidEnvironment, "CNI_ARGS");
}
