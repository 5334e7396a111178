//! Serving one request line: parse it, reply, and give the connection its role. No input
//! makes the shim panic or stop: a bad request gets `{"error": ...}` and the connection closes.

use crate::conn::Role;
use crate::exec::{self, ExecStdio};
use crate::proto::{ExecExit, OkReply, PidReply, Request, StatusReply};
use crate::shim::Shim;

impl Shim {
    pub(crate) fn handle_request(&mut self, i: usize, line: &[u8], rest: Vec<u8>) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                self.conns[i].fail(format!("invalid request: {e}"));
                self.conns[i].flush();
                return;
            }
        };
        match req {
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => self.attach(i, stdin, stdout, stderr, &rest),
            Request::Resize { height, width } => {
                let r = if self.record.is_some() {
                    Err(format!("container {} has exited", self.cfg.id))
                } else if self.io.master.is_none() {
                    Err(format!("container {} has no terminal", self.cfg.id))
                } else {
                    self.io.resize(height, width)
                };
                self.done(i, r);
            }
            Request::Start => {
                let r = if !self.cfg.start_on_request {
                    Err(format!("container {} was started at creation", self.cfg.id))
                } else if self.started {
                    Err(format!("container {} is already started", self.cfg.id))
                } else {
                    self.started = true;
                    skiff_runtime::Runtime::new(&self.cfg.runtime_root)
                        .start(&self.cfg.id)
                        .map_err(|e| e.to_string())
                };
                self.done(i, r);
            }
            Request::Wait => match &self.record {
                Some(rec) => {
                    let rec = rec.clone();
                    let c = &mut self.conns[i];
                    c.reply(&rec);
                    c.role = Role::Done;
                    c.closing = true;
                }
                None => self.conns[i].role = Role::Wait,
            },
            Request::Exec {
                exec_id,
                process,
                stdin,
                stdout,
                stderr,
            } => {
                let want = ExecStdio {
                    stdin,
                    stdout,
                    stderr,
                };
                self.exec(i, exec_id, *process, want, &rest);
            }
            Request::ExecWait { exec_id } => {
                if self.execs.iter().any(|e| e.id == exec_id) {
                    self.conns[i].role = Role::ExecWait(exec_id);
                } else if let Some(code) = self.finished.get(&exec_id) {
                    let c = &mut self.conns[i];
                    c.reply(&ExecExit { exit_code: code });
                    c.role = Role::Done;
                    c.closing = true;
                } else {
                    self.conns[i].fail(format!("exec {exec_id} not found"));
                }
            }
            Request::ExecResize {
                exec_id,
                height,
                width,
            } => {
                let r = match self.execs.iter().find(|e| e.id == exec_id) {
                    Some(e) if e.io.master.is_some() => e.io.resize(height, width),
                    Some(_) => Err(format!("exec {exec_id} has no terminal")),
                    None => Err(format!("exec {exec_id} not found")),
                };
                self.done(i, r);
            }
            Request::Status => {
                let reply = StatusReply {
                    pid: self.pid,
                    running: self.exited.is_none(),
                };
                let c = &mut self.conns[i];
                c.reply(&reply);
                c.role = Role::Done;
                c.closing = true;
            }
        }
        self.conns[i].flush();
    }

    /// Reply `{"ok":true}` or the error, and close.
    fn done(&mut self, i: usize, r: Result<(), String>) {
        let c = &mut self.conns[i];
        match r {
            Ok(()) => {
                c.reply(&OkReply { ok: true });
                c.role = Role::Done;
                c.closing = true;
            }
            Err(e) => c.fail(e),
        }
    }

    fn attach(&mut self, i: usize, stdin: bool, stdout: bool, stderr: bool, rest: &[u8]) {
        let c = &mut self.conns[i];
        c.reply(&OkReply { ok: true });
        if self.record.is_some() {
            // Nothing more will come: an empty stream.
            c.role = Role::Done;
            c.closing = true;
            return;
        }
        c.role = Role::Attach {
            stdin,
            stdout,
            stderr,
        };
        let eof = c.read_eof;
        if !rest.is_empty() {
            self.forward_stdin(i, rest);
        }
        if eof {
            self.release_stdin(i);
        }
    }

    fn exec(
        &mut self,
        i: usize,
        exec_id: String,
        process: oci_spec::runtime::Process,
        want: ExecStdio,
        rest: &[u8],
    ) {
        if self.exited.is_some() {
            let msg = format!("container {} is not running", self.cfg.id);
            return self.conns[i].fail(msg);
        }
        if exec_id.is_empty() {
            return self.conns[i].fail("exec_id is empty");
        }
        if self.execs.iter().any(|e| e.id == exec_id) {
            return self.conns[i].fail(format!("exec {exec_id} is already running"));
        }
        self.heavy = true;
        match exec::start(&self.cfg, &self.null, exec_id.clone(), process, want) {
            Ok(e) => {
                let c = &mut self.conns[i];
                c.reply(&PidReply {
                    pid: e.pid.as_raw(),
                });
                c.role = Role::Exec {
                    exec_id,
                    stdin: want.stdin,
                };
                let eof = c.read_eof;
                self.execs.push(e);
                if !rest.is_empty() {
                    self.forward_stdin(i, rest);
                }
                if eof {
                    self.release_stdin(i);
                }
            }
            Err(e) => self.conns[i].fail(format!("exec {exec_id}: {e}")),
        }
    }
}
