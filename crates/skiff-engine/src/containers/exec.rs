//! Exec instances (`docker exec`): made by `exec create`, run by the container's monitor on
//! `exec start`, inspected until their container goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::UnixStream;

use super::service::{Containers, ContainersError, Result};
use super::shim;

/// `ExecConfig` of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields, default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    /// Sent by the docker CLI (deprecated in the API; `exec start` decides).
    pub detach: bool,
    /// Sent by docker-py (the path names the container).
    #[serde(skip_serializing)]
    pub container: String,
    pub console_size: Option<[u32; 2]>,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
}

/// The state of one exec.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub started: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
    /// The exit code once known (wakes `exec_exit_code`).
    pub exit: tokio::sync::watch::Sender<Option<i64>>,
}

/// All exec instances of the daemon.
#[derive(Default)]
pub struct Execs(Mutex<HashMap<String, Arc<ExecInstance>>>);

impl Execs {
    fn get(&self, id: &str) -> Result<Arc<ExecInstance>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| ContainersError::NotFound(format!("No such exec instance: {id}")))
    }
}

impl Containers {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, what: &str, cfg: ExecConfig) -> Result<String> {
        let e = self.get(what)?;
        let c = e.snapshot();
        if !c.state.running {
            return Err(ContainersError::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(ContainersError::Conflict(format!(
                "container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if cfg.cmd.as_ref().is_none_or(|x| x.is_empty()) {
            return Err(ContainersError::Invalid("No exec command specified".into()));
        }
        let id = super::service::new_id();
        self.execs
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id.clone(),
                Arc::new(ExecInstance {
                    id: id.clone(),
                    container_id: c.id.clone(),
                    config: cfg,
                    state: Mutex::new(ExecState::default()),
                    exit: tokio::sync::watch::channel(None).0,
                }),
            );
        e.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(id.clone());
        self.emit("exec_create", &c, &[("execID", id.clone())]);
        Ok(id)
    }

    /// The OCI process of an exec: the container's, with the exec's overrides.
    fn exec_process(&self, x: &ExecInstance, tty: bool) -> Result<Value> {
        let e = self.get(&x.container_id)?;
        let cfg_path = e.dir.join("config.json");
        let spec: Value = std::fs::read(&cfg_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ContainersError::System(format!("read {}", cfg_path.display())))?;
        let mut p = spec["process"].clone();
        p["args"] = json!(x.config.cmd.clone().unwrap_or_default());
        p["terminal"] = json!(tty);
        let mut env: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for kv in x.config.env.iter().flatten() {
            let k = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(k));
            env.push(kv.clone());
        }
        if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        p["env"] = json!(env);
        if !x.config.working_dir.is_empty() {
            p["cwd"] = json!(x.config.working_dir);
        }
        if !x.config.user.is_empty() {
            let id = super::user::resolve(&e.dir.join("rootfs"), &x.config.user)
                .map_err(ContainersError::Invalid)?;
            p["user"] = json!({"uid": id.uid, "gid": id.gid, "additionalGids": id.additional_gids});
        }
        if x.config.privileged {
            let all = super::spec::capabilities(&super::spec::SpecOptions {
                privileged: true,
                ..Default::default()
            })
            .map_err(|e| ContainersError::System(e.to_string()))?;
            p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
        }
        Ok(p)
    }

    /// `POST /exec/{id}/start`: runs it; returns the monitor stream carrying its stdio
    /// (framed unless tty), which ends when the process has exited.
    pub async fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
        tty: Option<bool>,
    ) -> Result<UnixStream> {
        let x = self.execs.get(exec_id)?;
        {
            let mut st = x.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.started {
                return Err(ContainersError::Conflict(format!(
                    "Error: Exec command {exec_id} has already run"
                )));
            }
            st.started = true;
            st.running = true;
        }
        let tty = tty.unwrap_or(false) || x.config.tty;
        let res = async {
            let process = self.exec_process(&x, tty)?;
            let sock = self.socket(&x.container_id);
            let (v, stream) = shim::request(
                &sock,
                &json!({
                    "op": "exec", "exec_id": x.id, "process": process,
                    "stdin": x.config.attach_stdin, "stdout": x.config.attach_stdout,
                    "stderr": x.config.attach_stderr,
                }),
            )
            .await
            .map_err(|e| ContainersError::System(format!("exec failed: {e}")))?;
            Ok::<_, ContainersError>((v, stream, sock))
        }
        .await;
        let (v, stream, sock) = match res {
            Ok(r) => r,
            Err(err) => {
                let mut st = x.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                let code = super::lifecycle::exit_code_for(&err.to_string());
                let code = if code == 128 { 126 } else { code };
                st.exit_code = Some(code);
                x.exit.send_replace(Some(code));
                return Err(err);
            }
        };
        x.state.lock().unwrap_or_else(|p| p.into_inner()).pid =
            v.get("pid").and_then(Value::as_i64).unwrap_or(0);
        if let Ok(e) = self.get(&x.container_id) {
            self.emit("exec_start", &e.snapshot(), &[("execID", x.id.clone())]);
        }
        let x2 = x.clone();
        let this = self.clone();
        tokio::spawn(async move {
            let code = match shim::call(&sock, &json!({"op": "exec-wait", "exec_id": x2.id})).await
            {
                Ok(v) => v.get("exit_code").and_then(Value::as_i64).unwrap_or(-1),
                Err(_) => -1,
            };
            {
                let mut st = x2.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                st.exit_code = Some(code);
            }
            x2.exit.send_replace(Some(code));
            if let Ok(e) = this.get(&x2.container_id) {
                this.emit(
                    "exec_die",
                    &e.snapshot(),
                    &[("execID", x2.id.clone()), ("exitCode", code.to_string())],
                );
            }
        });
        Ok(stream)
    }

    /// Waits until an exec has its exit code (after its stream ended), briefly.
    pub async fn exec_exit_code(&self, exec_id: &str) -> Option<i64> {
        let x = self.execs.get(exec_id).ok()?;
        let mut rx = x.exit.subscribe();
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            rx.wait_for(|c| c.is_some()),
        )
        .await
        .ok()?
        .ok()
        .and_then(|c| *c);
        got
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, exec_id: &str, h: u32, w: u32) -> Result<()> {
        let x = self.execs.get(exec_id)?;
        shim::call(
            &self.socket(&x.container_id),
            &json!({"op": "exec-resize", "exec_id": exec_id, "height": h, "width": w}),
        )
        .await
        .map(drop)
        .map_err(|e| ContainersError::Conflict(e.to_string()))
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, exec_id: &str) -> Result<Value> {
        let x = self.execs.get(exec_id)?;
        let st = x.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cmd = x.config.cmd.clone().unwrap_or_default();
        Ok(json!({
            "CanRemove": false,
            "DetachKeys": x.config.detach_keys,
            "ID": x.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "privileged": x.config.privileged,
                "user": x.config.user,
                "tty": x.config.tty,
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
            },
            "OpenStdin": x.config.attach_stdin,
            "OpenStderr": x.config.attach_stderr,
            "OpenStdout": x.config.attach_stdout,
            "ContainerID": x.container_id,
            "Pid": st.pid,
        }))
    }

    /// Drops the exec instances of a removed container.
    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.execs
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, x| x.container_id != container_id);
    }
}
