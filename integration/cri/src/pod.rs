//! The scenario: what the kubelet does with a pod, checked from the CRI's
//! side and the host's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_cri::v1::*;

use crate::client::Cri;
use crate::node::{cgroup_file, http_get};
use crate::stream::exec_tty;
use crate::{ensure, Env, Tally};

fn pod_config(env: &Env, name: &str, network: NamespaceMode) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "estiba-test".into(),
            attempt: 0,
        }),
        // The kubelet names only pods with a UTS namespace of their own
        // (runtimes refuse a hostname without one).
        hostname: if network == NamespaceMode::Node {
            String::new()
        } else {
            name.into()
        },
        log_directory: format!("{}/{name}", env.log_dir),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/pod-{name}", env.cgroup_parent),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(env: &Env, pc: &PodSandboxConfig, name: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: env.image.clone(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        // As the kubelet does: the pod's namespace choices again, per
        // container (a pid namespace of its own, without
        // shareProcessNamespace).
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: pc
                    .linux
                    .as_ref()
                    .and_then(|l| l.security_context.as_ref())
                    .and_then(|s| s.namespace_options.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Waits (bounded) until the container is in `state`.
async fn wait_state(
    cri: &mut Cri,
    id: &str,
    state: ContainerState,
    bound: Duration,
) -> Result<ContainerStatus, String> {
    let end = Instant::now() + bound;
    loop {
        let st = cri.status(id).await?.status.ok_or("no status")?;
        if st.state == state as i32 {
            return Ok(st);
        }
        if Instant::now() > end {
            return Err(format!(
                "{id}: state {} after {bound:?}, not {state:?}",
                st.state
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The container's init pid, from the verbose status (containerd's
/// `info` JSON).
async fn pid_of(cri: &mut Cri, id: &str) -> Result<u32, String> {
    let r = cri.status(id).await?;
    let info = r.info.get("info").ok_or("no verbose info")?;
    let v: serde_json::Value = serde_json::from_str(info).map_err(|e| e.to_string())?;
    v["pid"]
        .as_u64()
        .map(|p| p as u32)
        .ok_or_else(|| format!("no pid in {info}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every scenario, then whatever is left is removed.
pub async fn run_all(cri: &mut Cri, env: &Env, t: &mut Tally) {
    let r = cri.version().await.and_then(|v| {
        ensure(
            v.runtime_api_version == "v1" && v.runtime_name == "containerd",
            || format!("{v:?}"),
        )
    });
    t.check("CRI Version: containerd answers the v1 API", r);
    if let Err(e) = pod_web(cri, env, t).await {
        t.check("pod with two containers (stopped early)", Err(e));
    }
    if let Err(e) = pod_host(cri, env, t).await {
        t.check("host-network pod (stopped early)", Err(e));
    }
    let left = remove_everything(cri).await;
    t.check("CRI: no container or pod sandbox left", left);
}

async fn remove_everything(cri: &mut Cri) -> Result<(), String> {
    let mut found = vec![];
    for c in cri.list().await? {
        found.push(format!("container {}", c.id));
        let _ = cri.stop(&c.id, 0).await;
        let _ = cri.remove(&c.id).await;
    }
    for p in cri.list_pods().await? {
        found.push(format!("pod {}", p.id));
        let _ = cri.stop_pod(&p.id).await;
        let _ = cri.remove_pod(&p.id).await;
    }
    ensure(found.is_empty(), || {
        format!("left by the scenario: {found:?}")
    })
}

/// Runs and starts a container in `pod`.
async fn run_in(
    cri: &mut Cri,
    pod: &str,
    pc: &PodSandboxConfig,
    c: ContainerConfig,
) -> Result<String, String> {
    let id = cri.create(pod, c, pc).await?;
    cri.start(&id).await?;
    Ok(id)
}

/// The pod of two containers on the bridge network: an httpd and a
/// sidecar.
async fn pod_web(cri: &mut Cri, env: &Env, t: &mut Tally) -> Result<(), String> {
    let pc = pod_config(env, "web", NamespaceMode::Pod);
    let pod = cri.run_pod(&pc).await?;
    let st = cri.pod_status(&pod).await?;
    let ip = st
        .status
        .as_ref()
        .and_then(|s| s.network.as_ref())
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    let ready = st.status.as_ref().map(|s| s.state) == Some(PodSandboxState::SandboxReady as i32);
    t.check(
        "RunPodSandbox: READY, with an address from the bridge's subnet",
        ensure(ready && ip.starts_with(&env.subnet), || format!("{st:?}")),
    );
    let httpd = container(
        env,
        &pc,
        "httpd",
        "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let web = run_in(cri, &pod, &pc, httpd).await?;
    let side = container(
        env,
        &pc,
        "sidecar",
        "echo started; echo warned >&2; trap 'exit 0' TERM; while :; do sleep 0.2; done",
    );
    let side = run_in(cri, &pod, &pc, side).await?;
    let r = wait_state(
        cri,
        &web,
        ContainerState::ContainerRunning,
        Duration::from_secs(10),
    )
    .await;
    t.check("StartContainer: RUNNING", r.map(drop));
    t.check(
        "the pod's IP answers from the node (httpd in the pod, bridge + host-local IPAM)",
        http_get(&ip, 8080)
            .and_then(|b| ensure(b.contains("hello-from-httpd"), || format!("got {b:?}"))),
    );
    shared_namespaces(cri, &web, &side, t).await?;
    exec_checks(cri, &side, t).await?;
    log_checks(env, t).await;
    runtime_checks(cri, env, &web, t).await?;
    stop_checks(cri, env, &pod, &pc, t).await?;
    teardown_pod(cri, &pod, &[web, side], t).await
}

async fn shared_namespaces(cri: &mut Cri, a: &str, b: &str, t: &mut Tally) -> Result<(), String> {
    let r = cri
        .exec_sync(b, &["wget", "-qO-", "http://127.0.0.1:8080/"], 10)
        .await?;
    t.check(
        "the pod's containers reach each other on localhost",
        ensure(text(&r.stdout).contains("hello-from-httpd"), || {
            format!("{r:?}")
        }),
    );
    let mut ns = HashMap::new();
    for id in [a, b] {
        let r = cri
            .exec_sync(
                id,
                &[
                    "sh",
                    "-c",
                    "for n in net ipc mnt pid; do readlink /proc/self/ns/$n; done; tr '\\0' ' ' < /proc/1/cmdline",
                ],
                10,
            )
            .await?;
        ns.insert(id, text(&r.stdout));
    }
    let (na, nb) = (&ns[a], &ns[b]);
    let la: Vec<_> = na.lines().collect();
    let lb: Vec<_> = nb.lines().collect();
    t.check(
        "the pod's containers share network and IPC namespaces, not mount or pid",
        ensure(
            la.len() == 5 && la[..2] == lb[..2] && la[2] != lb[2] && la[3] != lb[3],
            || format!("{na:?} / {nb:?}"),
        ),
    );
    t.check(
        "each container's pid 1 is its own command (no shared pid namespace asked)",
        ensure(
            la.get(4).is_some_and(|c| c.starts_with("httpd"))
                && lb
                    .get(4)
                    .is_some_and(|c| c.starts_with("sh -c echo started")),
            || format!("{na:?} / {nb:?}"),
        ),
    );
    Ok(())
}

async fn exec_checks(cri: &mut Cri, id: &str, t: &mut Tally) -> Result<(), String> {
    let r = cri
        .exec_sync(id, &["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
        .await?;
    t.check(
        "ExecSync: stdout, stderr apart, and the exit code",
        ensure(
            text(&r.stdout) == "out\n" && text(&r.stderr) == "err\n" && r.exit_code == 3,
            || format!("{r:?}"),
        ),
    );
    let began = Instant::now();
    let r = cri.exec_sync(id, &["sleep", "30"], 1).await;
    let took = began.elapsed();
    t.check(
        "ExecSync: a timeout ends the command (an error within seconds)",
        ensure(r.is_err() && took < Duration::from_secs(15), || {
            format!("{r:?} after {took:?}")
        }),
    );
    let url = cri.exec_url(id, &["sh"], true).await?;
    let r = exec_tty(&url).and_then(|(out, status)| {
        let pts = out.lines().any(|l| l.trim().starts_with("/dev/pts/"));
        // The exit code comes as a Kubernetes Status: "exit code 4".
        ensure(
            pts && status.contains("ExitCode") && status.contains("\"4\""),
            || format!("output {out:?}, status {status:?}"),
        )
    });
    t.check(
        "Exec with a tty (the streaming server, as kubectl exec -it): a terminal and the exit code",
        r,
    );
    Ok(())
}

async fn log_checks(env: &Env, t: &mut Tally) {
    let path = format!("{}/web/sidecar.log", env.log_dir);
    let mut log = String::new();
    for _ in 0..50 {
        log = std::fs::read_to_string(&path).unwrap_or_default();
        if log.contains("warned") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The CRI log format: RFC 3339 time, stream, P/F tag, text.
    let ok = |stream: &str, text: &str| {
        log.lines().any(|l| {
            let f: Vec<_> = l.splitn(4, ' ').collect();
            f.len() == 4 && f[0].contains('T') && f[1] == stream && f[2] == "F" && f[3] == text
        })
    };
    t.check(
        "logs: written where the CRI says, in its format, stdout and stderr apart",
        ensure(ok("stdout", "started") && ok("stderr", "warned"), || {
            format!("{path}: {log:?}")
        }),
    );
}

/// The container is estiba's, and UpdateContainerResources reaches its
/// cgroup.
async fn runtime_checks(cri: &mut Cri, env: &Env, id: &str, t: &mut Tally) -> Result<(), String> {
    let pid = pid_of(cri, id).await?;
    let out = std::process::Command::new(&env.estiba)
        .args(["--root", &env.estiba_root, "state", id])
        .output()
        .map_err(|e| format!("{}: {e}", env.estiba))?;
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    t.check(
        "the container is estiba's: `estiba state` shows it running with the CRI's pid",
        ensure(
            state["status"] == "running" && state["pid"].as_u64() == Some(pid as u64),
            || format!("{state} {}", text(&out.stderr)),
        ),
    );
    let res = LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        cpu_period: 100_000,
        cpu_quota: 50_000,
        ..Default::default()
    };
    cri.update(id, res).await?;
    let mem = cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max");
    let cpu = cgroup_file(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
    t.check(
        "UpdateContainerResources: memory and CPU limits in the container's cgroup",
        ensure(
            mem.as_deref() == Ok("67108864")
                && matches!(cpu.as_deref(), Ok("50000") | Ok("50000 100000")),
            || format!("memory {mem:?}, cpu {cpu:?}"),
        ),
    );
    Ok(())
}

/// StopContainer: SIGTERM, then SIGKILL after the timeout; the status
/// says how each ended.
async fn stop_checks(
    cri: &mut Cri,
    env: &Env,
    pod: &str,
    pc: &PodSandboxConfig,
    t: &mut Tally,
) -> Result<(), String> {
    let polite = container(
        env,
        pc,
        "polite",
        "trap 'exit 0' TERM; while :; do sleep 0.2; done",
    );
    let polite = run_in(cri, pod, pc, polite).await?;
    let stubborn = container(
        env,
        pc,
        "stubborn",
        "trap '' TERM; while :; do sleep 0.2; done",
    );
    let stubborn = run_in(cri, pod, pc, stubborn).await?;
    let failing = container(env, pc, "failing", "exit 7");
    let failing = run_in(cri, pod, pc, failing).await?;
    for id in [&polite, &stubborn] {
        wait_state(
            cri,
            id,
            ContainerState::ContainerRunning,
            Duration::from_secs(10),
        )
        .await?;
    }
    // Let the shells set their traps.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let began = Instant::now();
    cri.stop(&polite, 10).await?;
    let took = began.elapsed();
    let st = cri.status(&polite).await?.status.ok_or("no status")?;
    t.check(
        "StopContainer: SIGTERM ends a process that handles it (exit 0, Completed)",
        ensure(
            took < Duration::from_secs(5) && st.exit_code == 0 && st.reason == "Completed",
            || format!("after {took:?}: {} {:?}", st.exit_code, st.reason),
        ),
    );
    let began = Instant::now();
    cri.stop(&stubborn, 2).await?;
    let took = began.elapsed();
    let st = cri.status(&stubborn).await?.status.ok_or("no status")?;
    t.check(
        "StopContainer with a timeout: SIGKILL after it when SIGTERM is ignored (137, Error)",
        ensure(
            took >= Duration::from_secs(2)
                && took < Duration::from_secs(15)
                && st.exit_code == 137
                && st.reason == "Error",
            || format!("after {took:?}: {} {:?}", st.exit_code, st.reason),
        ),
    );
    let st = wait_state(
        cri,
        &failing,
        ContainerState::ContainerExited,
        Duration::from_secs(10),
    )
    .await?;
    t.check(
        "ContainerStatus: a container's own exit code and reason (7, Error)",
        ensure(
            st.exit_code == 7 && st.reason == "Error" && st.finished_at > 0,
            || format!("{st:?}"),
        ),
    );
    for id in [&polite, &stubborn, &failing] {
        cri.remove(id).await?;
    }
    Ok(())
}

/// Stop and remove the containers and the pod, as the kubelet does.
async fn teardown_pod(
    cri: &mut Cri,
    pod: &str,
    ids: &[String],
    t: &mut Tally,
) -> Result<(), String> {
    for id in ids {
        cri.stop(id, 5).await?;
    }
    for id in ids {
        cri.remove(id).await?;
    }
    let left: Vec<_> = cri.list().await?.into_iter().map(|c| c.id).collect();
    t.check(
        "RemoveContainer: the pod holds no container",
        ensure(left.is_empty(), || format!("{left:?}")),
    );
    cri.stop_pod(pod).await?;
    let st = cri.pod_status(pod).await?;
    let not_ready = st.status.map(|s| s.state) == Some(PodSandboxState::SandboxNotready as i32);
    t.check("StopPodSandbox: NOTREADY", ensure(not_ready, String::new));
    cri.remove_pod(pod).await?;
    let pods = cri.list_pods().await?;
    t.check(
        "RemovePodSandbox: no pod left",
        ensure(pods.is_empty(), || format!("{pods:?}")),
    );
    Ok(())
}

/// A host-network pod: its container is in the node's network namespace.
async fn pod_host(cri: &mut Cri, env: &Env, t: &mut Tally) -> Result<(), String> {
    let pc = pod_config(env, "hostnet", NamespaceMode::Node);
    let pod = cri.run_pod(&pc).await?;
    let c = container(
        env,
        &pc,
        "sleeper",
        "trap 'exit 0' TERM; while :; do sleep 0.2; done",
    );
    let id = run_in(cri, &pod, &pc, c).await?;
    let r = cri
        .exec_sync(&id, &["readlink", "/proc/self/ns/net"], 10)
        .await?;
    let node = std::fs::read_link(&env.node_netns)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| format!("{}: {e}", env.node_netns))?;
    t.check(
        "host-network pod: the container is in the node's network namespace",
        ensure(text(&r.stdout).trim() == node, || {
            format!("{:?} vs {node}", text(&r.stdout))
        }),
    );
    cri.stop(&id, 5).await?;
    cri.remove(&id).await?;
    cri.stop_pod(&pod).await?;
    cri.remove_pod(&pod).await
}
