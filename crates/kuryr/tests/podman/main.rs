//! Functional tests of `kuryr-cni` under a real CNI runtime: Debian's
//! podman 4.3 with its CNI network backend, against the stack of
//! `scripts/stack` (Neutron ML2/OVN, OVS `br-int`).
//!
//! Run them with `scripts/test`, or by hand:
//! `eval "$(scripts/stack env)"; cargo build -p kuryr-cni; cargo test -p kuryr --test podman`.
//! Without `KURYR_STACK_AUTH` (or in keystone mode) every test prints a
//! skip notice and passes. With the noauth stack up, a missing podman is
//! a failure: `scripts/stack install` installs it.
//!
//! Each test runs its own `kuryr daemon` on its own socket, its own Neutron
//! networks, and a podman fully isolated in a temp dir: its own storage
//! (`--root`, `--runroot`, `--tmpdir`), CNI config dir, plugin dir (with a
//! copy of `kuryr-cni`) and `containers.conf` (`CONTAINERS_CONF`). The image
//! is imported from a busybox-static rootfs. Dropping the world removes the
//! containers (podman runs the CNI DEL), the image, what is left in Neutron,
//! on the host and in libcni's cache, and stops the daemon.
//!
//! How podman hands `KURYR_CNI_SOCKET` to the plugin: libcni runs plugins
//! with the runtime's own environment plus the `CNI_*` variables, so the
//! `podman` process passes it on for ADD. The teardown after a container
//! stops runs in `podman container cleanup`, started by conmon, whose
//! environment is containers.conf's `conmon_env_vars`; the variable must be
//! there too, or that DEL goes to the default socket, fails, and podman
//! forgets the attachment (a leaked port).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use kuryr_testkit::cni_util::Daemon;
use kuryr_testkit::*;
use openstack::neutron::{Port, Query};
use serde_json::{json, Value};

mod attachments;

const DEVICE_OWNER: &str = "compute:kuryr";
/// Longest one podman command may take before the test fails.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(180);

/// podman from `PATH`; its absence on a noauth stack fails the test.
fn podman_bin(test: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("podman")).find(|p| p.is_file()).unwrap_or_else(
        || {
            panic!(
                "{test}: podman is not installed, but the stack is up: \
                 run `scripts/stack install` (it installs Debian's podman)"
            )
        },
    )
}

// ------------------------------------------------------------- the daemon

// ------------------------------------------------------------- the world

/// One Neutron network and the CNI network (conflist) that names it.
struct Net {
    /// The CNI network name, which podman's `--network` takes.
    cni_name: String,
    neutron_id: String,
    /// `a.b.c` of its /24.
    prefix: String,
}

/// One container, as podman reported it.
struct Container {
    name: String,
    id: String,
    /// Its network namespace (podman removes it; Drop does if not).
    sandbox: String,
}

/// One test's world. Fields drop in order after `Drop::drop` ran.
struct World {
    stack: Stack,
    podman: PathBuf,
    daemon: Option<Daemon>,
    dir: PathBuf,
    suffix: String,
    image: String,
    nets: Vec<Net>,
    containers: Vec<Container>,
}

/// This binary's [`World`], or a skip: the calling test returns at once
/// when there is no stack (or no podman).
macro_rules! podman_world {
    ($test:expr) => {
        match World::new($test) {
            Some(w) => w,
            None => return,
        }
    };
}
use podman_world;

impl World {
    fn new(test: &str) -> Option<World> {
        let stack = stack(test)?;
        let podman = podman_bin(test);
        let suffix = hex(8);
        let dir = std::env::temp_dir().join(format!("kuryr-podman-test-{suffix}"));
        for sub in ["cni", "bin", "root", "run", "tmp", "rootfs"] {
            std::fs::create_dir_all(dir.join(sub)).expect("test dir");
        }
        let mut w = World {
            stack,
            podman,
            daemon: None,
            dir,
            image: format!("localhost/kpm-{suffix}:latest"),
            suffix,
            nets: Vec::new(),
            containers: Vec::new(),
        };
        w.daemon = Some(Daemon::start(&w.dir, &["--debug"], &[]));
        w.write_containers_conf();
        // The plugin dir holds only kuryr-cni; Debian's plugins stay in /usr/lib/cni.
        std::fs::copy(kuryr_cni_bin(), w.dir.join("bin/kuryr-cni")).expect("copying kuryr-cni");
        w.import_image();
        Some(w)
    }

    fn socket(&self) -> PathBuf {
        self.daemon.as_ref().expect("daemon").socket.clone()
    }

    /// podman's config: CNI backend, our plugin dir first, and limits this
    /// machine allows (runc cannot raise RLIMIT_NOFILE/NPROC here: no
    /// CAP_SYS_RESOURCE, and podman's default asks for 1048576).
    fn write_containers_conf(&self) {
        let quote = |p: &Path| json!(p.to_string_lossy()).to_string();
        let conf = format!(
            "[containers]\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             \n\
             [network]\n\
             network_backend = \"cni\"\n\
             cni_plugin_dirs = [{bin}, \"/usr/lib/cni\"]\n\
             network_config_dir = {cni}\n\
             \n\
             [engine]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             conmon_env_vars = [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", {sock}]\n",
            bin = quote(&self.dir.join("bin")),
            cni = quote(&self.dir.join("cni")),
            sock = json!(format!("KURYR_CNI_SOCKET={}", self.socket().display())),
        );
        std::fs::write(self.dir.join("containers.conf"), conf).expect("containers.conf");
    }

    /// A podman command in this world's isolated configuration.
    fn podman_cmd(&self, args: &[&str]) -> Command {
        let d = |sub: &str| self.dir.join(sub);
        let mut cmd = Command::new(&self.podman);
        cmd.arg("--root")
            .arg(d("root"))
            .arg("--runroot")
            .arg(d("run"))
            .arg("--tmpdir")
            .arg(d("tmp"))
            .arg("--network-backend")
            .arg("cni")
            .arg("--network-config-dir")
            .arg(d("cni"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args)
            .env("CONTAINERS_CONF", d("containers.conf"))
            .env("KURYR_CNI_SOCKET", self.socket());
        cmd
    }

    fn podman_out(&self, args: &[&str]) -> Output {
        run_command(self.podman_cmd(args), &format!("podman {}", args.join(" ")), PODMAN_TIMEOUT)
    }

    /// A podman command that must succeed; its trimmed stdout.
    fn podman(&self, args: &[&str]) -> String {
        let what = format!(
            "podman {} (daemon log: {})",
            args.join(" "),
            self.dir.join("daemon.log").display()
        );
        stdout_of_success(&what, &self.podman_out(args))
    }

    /// `podman import` of a busybox-static rootfs (as scripts/stack builds kbox).
    fn import_image(&self) {
        let root = self.dir.join("rootfs");
        for sub in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var/run"] {
            std::fs::create_dir_all(root.join(sub)).expect("rootfs dir");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("copying /bin/busybox (package busybox-static)");
        for applet in ok("/bin/busybox", &["--list"]).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                    .expect("applet symlink");
            }
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
        std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("group");
        let tar = self.dir.join("rootfs.tar");
        let (tar_s, root_s) = (tar.to_string_lossy(), root.to_string_lossy());
        ok("tar", &["-C", &root_s, "-cf", &tar_s, "."]);
        self.podman(&[
            "import",
            "-c",
            "ENV PATH=/bin:/sbin",
            "-c",
            "CMD [\"/bin/sh\"]",
            &tar_s,
            &self.image,
        ]);
    }

    /// A Neutron network with a /24 subnet, and a conflist naming it.
    fn make_net(&mut self, tag: &str, gateway: bool) -> usize {
        let neutron_name = format!("kpm-{}-{tag}", self.suffix);
        let s = &self.stack;
        let net = s.create_network_named(neutron_name.clone());
        let prefix = fresh_v4();
        let net_idx = self.nets.len();
        self.nets.push(Net {
            cni_name: format!("kpm{}{tag}", self.suffix),
            neutron_id: net.id.to_string(),
            prefix: prefix.clone(),
        });
        let gateway_ip = gateway.then(|| format!("{prefix}.1").parse().expect("ip"));
        let (name, cidr) = (format!("{neutron_name}-v4"), format!("{prefix}.0/24"));
        s.create_subnet_named(&net.id, Some(name), &cidr, gateway_ip);
        let cni_name = &self.nets[net_idx].cni_name;
        let conflist = json!({
            // libcni 1.1 in podman 4.3 speaks up to 1.0.0.
            "cniVersion": "1.0.0",
            "name": cni_name,
            "plugins": [{"type": "kuryr-cni", "neutron": {"network": neutron_name}}],
        });
        std::fs::write(
            self.dir.join("cni").join(format!("{cni_name}.conflist")),
            serde_json::to_string_pretty(&conflist).expect("json"),
        )
        .expect("writing the conflist");
        net_idx
    }

    /// `podman run -d` of a sleeping container, one `--network` per item
    /// (`name` or `name:interface_name=eth1`).
    fn run(&mut self, tag: &str, networks: &[&str]) -> usize {
        let name = format!("kpm-{}-{tag}", self.suffix);
        let started = Instant::now();
        let mut args = vec!["run", "-d", "--name", &name];
        for net in networks {
            args.extend(["--network", net]);
        }
        args.extend([self.image.as_str(), "sleep", "3600"]);
        let out = self.podman_out(&args);
        // Recorded before asserting, so Drop removes a half-made container.
        self.containers.push(Container {
            name: name.clone(),
            id: String::new(),
            sandbox: String::new(),
        });
        assert!(
            out.status.success(),
            "podman run {name} failed:\n{}\ndaemon log: {}",
            String::from_utf8_lossy(&out.stderr),
            self.dir.join("daemon.log").display(),
        );
        eprintln!(
            "timing: podman run -d ({} network(s)) {} ms",
            networks.len(),
            started.elapsed().as_millis()
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(id.len(), 64, "podman run prints the container id: {id}");
        let sandbox = self.podman(&["inspect", "--format", "{{.NetworkSettings.SandboxKey}}", &id]);
        assert!(
            Path::new(&sandbox).exists(),
            "podman inspect names the netns it made: {sandbox:?}"
        );
        let idx = self.containers.len() - 1;
        self.containers[idx].id = id;
        self.containers[idx].sandbox = sandbox;
        idx
    }

    fn exec(&self, c: usize, args: &[&str]) -> String {
        let mut full = vec!["exec", self.containers[c].name.as_str()];
        full.extend_from_slice(args);
        self.podman(&full)
    }

    fn ping_ok(&self, from: usize, ip: &str, count: &str) -> bool {
        let name = self.containers[from].name.as_str();
        self.podman_out(&["exec", name, "ping", "-c", count, "-i", "0.2", "-W", "1", ip])
            .status
            .success()
    }

    /// Pings `ip` from container `from` (the first one may wait for ARP).
    fn assert_ping(&self, from: usize, ip: &str) {
        wait_for(
            &format!("a ping from {} to {ip}", self.containers[from].name),
            Duration::from_secs(15),
            || self.ping_ok(from, ip, "1").then_some(()),
        );
        assert!(self.ping_ok(from, ip, "3"), "pings to {ip} after the first failed");
    }

    fn ports_of(&self, c: usize) -> Vec<Port> {
        self.stack.ports(Query::new().device_id(self.containers[c].id.clone()))
    }

    /// The container's port with ifname tag `ifname`, checked like a user
    /// would: owner, device, host, network, name, tags, ACTIVE.
    fn checked_port(&self, c: usize, ifname: &str, net: usize) -> Port {
        let cid = &self.containers[c].id;
        let ifname_tag = format!("kuryr.cni.ifname:{ifname}");
        let port = wait_for(
            &format!("the {ifname} port of {cid} to be ACTIVE"),
            Duration::from_secs(30),
            || {
                self.ports_of(c)
                    .into_iter()
                    .find(|p| p.tags.contains(&ifname_tag))
                    .filter(|p| p.status == "ACTIVE")
            },
        );
        assert_eq!(port.device_owner, DEVICE_OWNER);
        assert_eq!(&port.device_id, cid, "device_id is podman's CNI_CONTAINERID");
        assert_eq!(port.binding_host_id, self.stack.local().host);
        assert_eq!(port.network_id, self.nets[net].neutron_id);
        assert_eq!(port.name, format!("kuryr-cni-{}-{ifname}", &cid[..12]));
        for tag in [
            DEVICE_OWNER.to_string(),
            format!("kuryr.cni.cid.lh:{}", &cid[..32]),
            format!("kuryr.cni.cid.uh:{}", &cid[32..]),
            ifname_tag.clone(),
            format!("kuryr.cni.net:{}", self.nets[net].cni_name),
        ] {
            assert!(port.tags.contains(&tag), "tag {tag} missing: {:?}", port.tags);
        }
        port
    }

    /// Inside the container: `ifname` has the port's MAC, the network's MTU
    /// and the port's address; `podman inspect` reports the same.
    fn assert_inside(&self, c: usize, ifname: &str, net: usize, port: &Port) -> String {
        let ip = port.fixed_ips[0].ip_address.to_string();
        assert!(ip.starts_with(&format!("{}.", self.nets[net].prefix)), "{ip} is in the subnet");
        let mtu =
            self.stack.network(&self.nets[net].neutron_id).expect("network").mtu.expect("mtu");
        let link = self.exec(c, &["ip", "link", "show", "dev", ifname]);
        assert!(
            link.contains(&format!("link/ether {}", port.mac_address.to_lowercase())),
            "{ifname} has the port's MAC: {link}"
        );
        assert!(link.contains(&format!("mtu {mtu} ")), "{ifname} MTU {mtu}: {link}");
        assert!(link.contains(",UP"), "{ifname} is up: {link}");
        let addr = self.exec(c, &["ip", "-4", "-o", "addr", "show", "dev", ifname]);
        assert!(addr.contains(&format!("inet {ip}/24 ")), "{ifname} has {ip}/24: {addr}");

        let inspect = self.podman(&[
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            &self.containers[c].id,
        ]);
        let nets: Value = serde_json::from_str(&inspect).expect("podman inspect JSON");
        let mine = &nets[&self.nets[net].cni_name];
        assert_eq!(mine["IPAddress"], ip.as_str(), "podman inspect: {nets}");
        assert_eq!(mine["IPPrefixLen"], 24, "podman inspect: {nets}");
        assert_eq!(
            mine["MacAddress"].as_str().map(str::to_lowercase),
            Some(port.mac_address.to_lowercase()),
            "podman inspect: {nets}"
        );
        ip
    }

    /// `podman rm -f -t 0` runs the CNI DEL; nothing of it is left.
    fn remove_and_check(&mut self, c: usize, ports: &[Port]) {
        let Container { name, id, sandbox } = &self.containers[c];
        let (name, id, sandbox) = (name.clone(), id.clone(), sandbox.clone());
        let started = Instant::now();
        self.podman(&["rm", "-f", "-t", "0", &name]);
        eprintln!("timing: podman rm -f {} ms", started.elapsed().as_millis());
        for port in ports {
            assert!(self.stack.port(&port.id).is_none(), "port {} left", port.id);
            self.stack.local().assert_unplugged(&port.id);
        }
        assert!(
            self.stack.ports(Query::new().device_id(id)).is_empty(),
            "a port of {name} is left"
        );
        assert!(!Path::new(&sandbox).exists(), "netns {sandbox} left");
        let listed = self.podman(&["ps", "-a", "--format", "{{.Names}}"]);
        assert!(!listed.lines().any(|l| l == name), "{name} still listed");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Containers first, while the daemon runs, so podman's DEL works.
        for c in &self.containers {
            let _ = run_command(
                self.podman_cmd(&["rm", "-f", "-t", "0", &c.name]),
                "podman rm",
                PODMAN_TIMEOUT,
            );
        }
        let _ =
            run_command(self.podman_cmd(&["rmi", "-f", &self.image]), "podman rmi", PODMAN_TIMEOUT);
        self.daemon.take();
        for net in &self.nets {
            self.stack.remove_network_and_ports(&net.neutron_id);
            // libcni's cache (/var/lib/cni/results/<net>-<cid>-<ifname>),
            // left when a DEL failed; our network names are unique.
            if let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") {
                let prefix = format!("{}-", net.cni_name);
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        for ns in self.containers.iter().map(|c| &c.sandbox) {
            if let Some(name) =
                ns.strip_prefix("/run/netns/").or(ns.strip_prefix("/var/run/netns/"))
            {
                if Path::new(ns).exists() {
                    let _ = run("ip", &["netns", "del", name]);
                }
            }
        }
        // Storage mounts (overlay, shm) podman may have left under our dir.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            let dir = self.dir.to_string_lossy().to_string();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&dir))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = run("umount", &["-l", p]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
