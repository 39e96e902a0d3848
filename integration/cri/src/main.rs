//! Drives containerd's CRI plugin the way the kubelet does, over its
//! socket with the v1 API (Kubernetes' own cri-api definitions), against
//! the runtime handler `estiba`: a pod with two containers sharing its
//! network and IPC namespaces, exec, logs, resource updates, stop with a
//! timeout, removal, and a host-network pod. Every check looks at state
//! from both sides (the CRI's answers and the host's cgroups, the runtime's
//! state, a real HTTP request). Prints one TAP line per check, then
//! "cri-checks: N passed, N failed". Run by integration/engines/cri.sh,
//! which starts containerd and says where things are in the environment.

mod client;
mod node;
mod pod;
mod stream;

use std::time::Duration;

/// Where things are, from integration/engines/cri.sh.
pub struct Env {
    pub socket: String,
    pub image: String,
    pub log_dir: String,
    pub cgroup_parent: String,
    /// The "node's" network namespace: containerd's own (a namespace the
    /// test made), for the host-network pod.
    pub node_netns: String,
    /// The first three octets of the pod subnet, e.g. "10.88.77.".
    pub subnet: String,
    pub estiba: String,
    /// The runc shim's runtime root for the k8s.io namespace.
    pub estiba_root: String,
}

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

impl Env {
    fn from_environment() -> Result<Env, String> {
        Ok(Env {
            socket: var("CRI_SOCKET")?,
            image: var("CRI_IMAGE")?,
            log_dir: var("CRI_LOG_DIR")?,
            cgroup_parent: var("CRI_CGROUP_PARENT")?,
            node_netns: var("CRI_NODE_NETNS")?,
            subnet: var("CRI_SUBNET")?,
            estiba: var("ESTIBA")?,
            estiba_root: var("ESTIBA_ROOT")?,
        })
    }
}

/// The TAP tally.
#[derive(Default)]
pub struct Tally {
    pass: u32,
    fail: u32,
}

impl Tally {
    pub fn check(&mut self, what: &str, r: Result<(), String>) {
        match r {
            Ok(()) => {
                self.pass += 1;
                println!("ok - {what}");
            }
            Err(e) => {
                self.fail += 1;
                println!("not ok - {what}");
                for line in e.lines() {
                    println!("#   {line}");
                }
            }
        }
    }
}

/// Fails with `why` unless `cond`.
pub fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

fn main() {
    let env = match Env::from_environment() {
        Ok(e) => e,
        Err(e) => {
            println!("not ok - cri-checks: {e}");
            println!("cri-checks: 0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("not ok - cri-checks: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    let mut tally = Tally::default();
    rt.block_on(async {
        match client::Cri::connect(&env.socket, Duration::from_secs(60)).await {
            Ok(mut cri) => {
                pod::run_all(&mut cri, &env, &mut tally).await;
            }
            Err(e) => tally.check("connect to the CRI socket", Err(e)),
        }
    });
    println!("cri-checks: {} passed, {} failed", tally.pass, tally.fail);
    std::process::exit(if tally.fail == 0 { 0 } else { 1 });
}
