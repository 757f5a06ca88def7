//! Quota exhaustion: a real Neutron port quota of 3 for a project of the
//! test's own. In noauth mode every request is project `fake_project_id`,
//! shared with every other test, so the fault proxy
//! (`common/fault_proxy.rs`) puts `project_id = <test project>` into each
//! `POST /v2.0/ports` body Kuryr sends: Neutron then counts Kuryr's ports
//! against that project's quota. The 4th `docker run` must fail with
//! Neutron's quota message, leave no port behind, and the plugin must
//! serve once the quota is raised. The quota is reset at the end, also on
//! failure.
//!
//! Run: `eval "$(scripts/stack env)"; cargo test -p kuryr --test quota`.

use kuryr_testkit::fault_proxy;

use std::time::{Duration, Instant};

use fault_proxy::{neutron_addr, Fault, FaultProxy};
use kuryr_testkit::*;
use openstack::neutron::{Neutron, Query, Quota};
use openstack::AuthOptions;

const QUOTA: i64 = 3;

/// Resets the project's quota and deletes the default security group
/// Neutron made for it, whatever happens to the test.
struct QuotaGuard {
    project: String,
}

impl Drop for QuotaGuard {
    fn drop(&mut self) {
        let Ok(opts) = AuthOptions::from_env() else {
            return;
        };
        let Ok(neutron) = Neutron::new(opts) else {
            return;
        };
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            if let Err(e) = neutron.reset_quota(&self.project).await {
                eprintln!("cleanup: resetting the quota of {}: {e}", self.project);
            }
            let query = Query::new().project_id(&self.project);
            for sg in neutron.list_security_groups(&query).await.unwrap_or_default() {
                let _ = neutron.delete_security_group(&sg.id).await;
            }
        });
    }
}

#[test]
fn port_quota_exhaustion() {
    let test = "port_quota_exhaustion";
    if !stack_in_mode(test, "noauth") {
        return;
    }
    let proxy = FaultProxy::start(neutron_addr());
    let project = format!("kquota{}", hex(12));
    proxy.add("POST", "/v2.0/ports", Fault::SetProject(project.clone()), None);
    let config = format!("[DEFAULT]\n[neutron]\nauth_type = none\nendpoint = {}\n", proxy.url());
    let f = fixture_or_skip!(test, &config);
    let s = &f.stack;
    let _guard = QuotaGuard { project: project.clone() };
    let set_quota = |n: i64| {
        let q = s
            .block_on(
                s.neutron.update_quota(&project, &Quota { port: Some(n), ..Quota::default() }),
            )
            .expect("setting the port quota");
        assert_eq!(q.port, Some(n));
    };
    set_quota(QUOTA);

    let (cidr, net, docker_net, network) = f.fresh_neutron_network();
    let project_ports = || s.ports(Query::new().network_id(&network.id).project_id(&project)).len();

    for i in 0..QUOTA {
        f.run_detached(&f.name(&format!("c{i}")), &net, &[]);
    }
    assert_eq!(project_ports() as i64, QUOTA, "the project holds its quota");

    let over = f.name("over");
    let started = Instant::now();
    let out = f.try_run_detached(&over, &net, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    eprintln!(
        "quota: run {} over a quota of {QUOTA} ports: {} in {:.1} s: {stderr}",
        QUOTA + 1,
        if out.status.success() { "ok" } else { "failed" },
        started.elapsed().as_secs_f64()
    );
    assert!(!out.status.success(), "a run over the quota succeeded");
    assert!(
        stderr.contains("OverQuota") && stderr.contains("Quota exceeded"),
        "Docker's message does not say quota: {stderr}"
    );
    assert!(stderr.contains("RequestAddress"), "{stderr}");
    f.remove_container(&over);
    // No leak: still exactly the quota's ports, and the plugin is alive.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(project_ports() as i64, QUOTA, "no port left by the failed run");
    let (status, _) = f.kuryr.post("/Plugin.Activate", b"");
    assert_eq!(status, 200, "the plugin still answers");

    // Raised quota: the same run succeeds.
    set_quota(QUOTA + 2);
    let again = f.name("again");
    f.run_detached(&again, &net, &[]);
    assert_eq!(project_ports() as i64, QUOTA + 1);

    for i in 0..QUOTA {
        f.remove_container(&f.name(&format!("c{i}")));
    }
    f.remove_container(&again);
    f.remove_network(&net);
    f.assert_clean(&docker_net, &[&cidr], &[]);
    eventually("no port of the project left", || {
        let n = project_ports();
        if n == 0 {
            vec![]
        } else {
            vec![format!("{n} ports of {project}")]
        }
    });
    eprintln!("quota: 0 ports left; quota reset by the guard");
}
