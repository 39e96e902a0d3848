//! The CRI RuntimeService over a unix socket, every call bounded.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Cri {
    rt: RuntimeServiceClient<Channel>,
    bound: Duration,
}

/// `call` within `bound`, its error as text naming `what`.
async fn bounded<T>(
    what: &str,
    bound: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(bound, call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(format!("{what}: {}: {}", s.code(), s.message())),
        Err(_) => Err(format!("{what}: no answer in {bound:?}")),
    }
}

impl Cri {
    pub async fn connect(socket: &str, bound: Duration) -> Result<Cri, String> {
        let path = socket.to_string();
        let endpoint = Endpoint::try_from("http://[::]:0").map_err(|e| e.to_string())?;
        let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }));
        let channel = tokio::time::timeout(bound, connect)
            .await
            .map_err(|_| format!("connect {socket}: no answer in {bound:?}"))?
            .map_err(|e| format!("connect {socket}: {e}"))?;
        Ok(Cri {
            rt: RuntimeServiceClient::new(channel),
            bound,
        })
    }

    pub async fn version(&mut self) -> Result<VersionResponse, String> {
        let req = VersionRequest {
            version: "v1".into(),
        };
        bounded("Version", self.bound, self.rt.version(req)).await
    }

    pub async fn run_pod(&mut self, config: &PodSandboxConfig) -> Result<String, String> {
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "estiba".into(),
        };
        let r = bounded("RunPodSandbox", self.bound, self.rt.run_pod_sandbox(req)).await?;
        Ok(r.pod_sandbox_id)
    }

    pub async fn pod_status(&mut self, id: &str) -> Result<PodSandboxStatusResponse, String> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        bounded(
            "PodSandboxStatus",
            self.bound,
            self.rt.pod_sandbox_status(req),
        )
        .await
    }

    pub async fn stop_pod(&mut self, id: &str) -> Result<(), String> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        bounded("StopPodSandbox", self.bound, self.rt.stop_pod_sandbox(req))
            .await
            .map(drop)
    }

    pub async fn remove_pod(&mut self, id: &str) -> Result<(), String> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        bounded(
            "RemovePodSandbox",
            self.bound,
            self.rt.remove_pod_sandbox(req),
        )
        .await
        .map(drop)
    }

    pub async fn list_pods(&mut self) -> Result<Vec<PodSandbox>, String> {
        let req = ListPodSandboxRequest { filter: None };
        let r = bounded("ListPodSandbox", self.bound, self.rt.list_pod_sandbox(req)).await?;
        Ok(r.items)
    }

    pub async fn create(
        &mut self,
        pod: &str,
        config: ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Result<String, String> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        };
        let r = bounded("CreateContainer", self.bound, self.rt.create_container(req)).await?;
        Ok(r.container_id)
    }

    pub async fn start(&mut self, id: &str) -> Result<(), String> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        bounded("StartContainer", self.bound, self.rt.start_container(req))
            .await
            .map(drop)
    }

    pub async fn status(&mut self, id: &str) -> Result<ContainerStatusResponse, String> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        bounded("ContainerStatus", self.bound, self.rt.container_status(req)).await
    }

    pub async fn exec_sync(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout_s: i64,
    ) -> Result<ExecSyncResponse, String> {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_s,
        };
        bounded("ExecSync", self.bound, self.rt.exec_sync(req)).await
    }

    pub async fn exec_url(&mut self, id: &str, cmd: &[&str], tty: bool) -> Result<String, String> {
        let req = ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin: true,
            stdout: true,
            stderr: !tty,
        };
        let r = bounded("Exec", self.bound, self.rt.exec(req)).await?;
        Ok(r.url)
    }

    pub async fn update(&mut self, id: &str, res: LinuxContainerResources) -> Result<(), String> {
        let req = UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(res),
            ..Default::default()
        };
        bounded(
            "UpdateContainerResources",
            self.bound,
            self.rt.update_container_resources(req),
        )
        .await
        .map(drop)
    }

    pub async fn stop(&mut self, id: &str, timeout_s: i64) -> Result<(), String> {
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_s,
        };
        bounded("StopContainer", self.bound, self.rt.stop_container(req))
            .await
            .map(drop)
    }

    pub async fn remove(&mut self, id: &str) -> Result<(), String> {
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        bounded("RemoveContainer", self.bound, self.rt.remove_container(req))
            .await
            .map(drop)
    }

    pub async fn list(&mut self) -> Result<Vec<Container>, String> {
        let req = ListContainersRequest { filter: None };
        let r = bounded("ListContainers", self.bound, self.rt.list_containers(req)).await?;
        Ok(r.containers)
    }
}
