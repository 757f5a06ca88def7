//! `kuryr-cni` in a chain with the reference plugins (tuning, portmap),
//! driven by upstream's cnitool.

use super::*;

// ------------------------------------------------------------- cnitool

/// A cnitool over Debian's libcni (golang-github-appc-cni-dev), built once
/// per test run: `cnitool add|check|del <conflist> <netns>`.
const CNITOOL_GO: &str = r#"package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: cnitool add|check|del <conflist> <netns>"))
	}
	conf, err := libcni.ConfListFromFile(os.Args[2])
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{ContainerID: os.Getenv("CNI_CONTAINERID"), NetNS: os.Args[3], IfName: os.Getenv("CNI_IFNAME")}
	for _, kv := range strings.Split(os.Getenv("CNI_ARGS"), ";") {
		if p := strings.SplitN(kv, "=", 2); len(p) == 2 {
			rt.Args = append(rt.Args, [2]string{p[0], p[1]})
		}
	}
	ctx := context.Background()
	switch os.Args[1] {
	case "add":
		res, err := cni.AddNetworkList(ctx, conf, rt)
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, conf, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, conf, rt); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
"#;

const GOPATH: &str = "/usr/share/gocode";

/// The built cnitool, or `None` (after saying why) without Go or libcni.
fn cnitool(test: &str) -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let libcni = Path::new(GOPATH).join("src/github.com/containernetworking/cni/libcni");
            if !libcni.exists() || run("sh", &["-c", "command -v go"]).stdout.is_empty() {
                eprintln!("{test}: skipped: needs go and golang-github-appc-cni-dev");
                return None;
            }
            // Content-addressed, so reruns reuse it and parallel runs of
            // the test binary do not clash (each builds, then renames).
            let key = std::hash::BuildHasher::hash_one(
                &std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default(),
                CNITOOL_GO,
            );
            let home = kuryr_bin()
                .parent()
                .expect("target dir")
                .join("kuryr-cnitool");
            let dir = home.join(format!("{key:016x}"));
            if dir.join("cnitool").exists() {
                return Some(dir.join("cnitool"));
            }
            let work = home.join(format!("build-{}", hex(8)));
            std::fs::create_dir_all(&work).expect("cnitool build dir");
            std::fs::write(work.join("main.go"), CNITOOL_GO).expect("main.go");
            let out = Command::new("go")
                .args(["build", "-o", "cnitool", "main.go"])
                .current_dir(&work)
                .env("GO111MODULE", "off")
                .env("GOPATH", GOPATH)
                .env("GOCACHE", home.join("gocache"))
                .output()
                .expect("running go build");
            assert!(
                out.status.success(),
                "building cnitool: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if std::fs::rename(&work, &dir).is_err() {
                // Another run won the race; use its build.
                let _ = std::fs::remove_dir_all(&work);
            }
            Some(dir.join("cnitool"))
        })
        .clone()
}

#[test]
fn cnitool_chain_with_tuning_and_portmap() {
    let mut f = cni_fixture!("cnitool_chain_with_tuning_and_portmap");
    let Some(tool) = cnitool("cnitool_chain_with_tuning_and_portmap") else {
        return;
    };
    // The shipped conflist (Debian's plugins speak up to 1.0.0), pointed
    // at this test's network.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/cni/10-kuryr.conflist");
    let mut conflist: Value = serde_json::from_str(
        &std::fs::read_to_string(shipped).expect("deploy/cni/10-kuryr.conflist"),
    )
    .expect("conflist JSON");
    conflist["name"] = json!(format!("kct{}", f.suffix));
    conflist["plugins"][0]["neutron"] = json!({"network": f.net_name});
    let conf_path = f.dir.join("10-kuryr.conflist");
    std::fs::write(&conf_path, conflist.to_string()).expect("conflist");
    let bin_dir = kuryr_cni_bin().parent().expect("bin dir").to_string_lossy().to_string();
    let socket = f.socket();
    let cache = f.dir.join("cache");
    let tool_run = |verb: &str, cid: &str, netns: &str| {
        let started = Instant::now();
        let out = Command::new(&tool)
            .args([verb, &conf_path.to_string_lossy(), netns])
            .env("KURYR_CNI_SOCKET", &socket)
            .env("CNI_PATH", format!("{bin_dir}:/usr/lib/cni"))
            .env("CNI_CONTAINERID", cid)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_CACHE_DIR", &cache)
            .output()
            .expect("running cnitool");
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        assert!(
            out.status.success(),
            "cnitool {verb} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("latency cnitool {verb} {ms} ms");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut seen = Vec::new();
    for round in 0..3 {
        let (netns, cid) = f.new_container(&format!("t{round}"));
        let result: Value = serde_json::from_str(&tool_run("add", &cid, &netns)).expect("result");
        assert_eq!(result["cniVersion"], "1.0.0");
        assert_eq!(result["interfaces"][1]["name"], "eth0");
        let port = f.port_of(&cid);
        f.wait_active(&port.id);
        assert_eq!(
            result["ips"][0]["address"].as_str().expect("address").split('/').next(),
            Some(port.fixed_ips[0].ip_address.to_string().as_str())
        );
        // tuning ran after us in the same netns.
        let name = netns.trim_start_matches("/var/run/netns/");
        let somaxconn = ok("ip", &["netns", "exec", name, "sysctl", "-n", "net.core.somaxconn"]);
        assert_eq!(somaxconn, "512");
        tool_run("check", &cid, &netns);
        tool_run("del", &cid, &netns);
        f.assert_gone(&cid, &port.id);
        seen.push(port.id);
    }
    assert_eq!(seen.len(), 3);
}
