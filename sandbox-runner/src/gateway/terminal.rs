//! The terminal panel: one real shell on a PTY per sandbox, shared by everyone watching. Its
//! output goes to every socket (after the scrollback, taken under the same lock the reader
//! appends under, so a new viewer sees no gap and no repeat); only owners and collaborators type
//! or resize. The shell starts on first use and again after it exits.
//!
//! Frames: the browser sends JSON text (`{"type":"input","data":..}`,
//! `{"type":"resize","cols":..,"rows":..}`); the gateway sends the PTY's bytes as binary frames
//! and JSON text for control: `{"type":"hello","writable":..,"cols":..,"rows":..}` first, then
//! `{"type":"size",..}` to everyone whenever the shell is resized (so viewers draw at the
//! shell's size, and a writer knows its resize took), and `{"type":"error",..}` for a frame the
//! gateway refuses, which is never dropped unanswered.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

const SCROLLBACK: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Incoming {
    Input { data: String },
    Resize { cols: u16, rows: u16 },
}

/// What every socket on the shell is sent, in order.
#[derive(Clone)]
enum Out {
    Bytes(Bytes),
    Size(Size),
}

#[derive(Clone, Copy, PartialEq, Debug)]
struct Size {
    cols: u16,
    rows: u16,
}

impl Size {
    fn winsize(self) -> rustix::termios::Winsize {
        rustix::termios::Winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }

    fn json(self, kind: &str) -> serde_json::Value {
        serde_json::json!({"type": kind, "cols": self.cols, "rows": self.rows})
    }
}

/// The PTY's writing side, and the size its writers asked for.
struct Writer {
    pty: pty_process::OwnedWritePty,
    /// The PTY again, to read its size back (its write half cannot).
    master: std::os::fd::OwnedFd,
    size: Size,
}

impl Writer {
    fn resize(&mut self, size: Size) -> std::io::Result<()> {
        rustix::termios::tcsetwinsize(&self.master, size.winsize())?;
        self.size = size;
        Ok(())
    }

    /// readline reads the terminal's size and writes it straight back each time it prepares a
    /// prompt, so a resize that lands between the two is undone and the shell goes on at the old
    /// size. The size asked for is put back before the shell reads what is typed next.
    fn keep_size(&self) -> std::io::Result<()> {
        let now = rustix::termios::tcgetwinsize(&self.master)?;
        if (now.ws_col, now.ws_row) != (self.size.cols, self.size.rows) {
            rustix::termios::tcsetwinsize(&self.master, self.size.winsize())?;
        }
        Ok(())
    }
}

struct Shell {
    writer: tokio::sync::Mutex<Writer>,
    output: broadcast::Sender<Out>,
    scrollback: Mutex<VecDeque<u8>>,
    alive: std::sync::atomic::AtomicBool,
}

pub struct Terminal {
    workspace: PathBuf,
    home: PathBuf,
    shell: tokio::sync::Mutex<Option<Arc<Shell>>>,
}

impl Terminal {
    pub fn new(workspace: PathBuf, home: PathBuf) -> Terminal {
        Terminal {
            workspace,
            home,
            shell: tokio::sync::Mutex::new(None),
        }
    }

    async fn shell(&self) -> std::io::Result<Arc<Shell>> {
        let mut slot = self.shell.lock().await;
        if let Some(s) = slot
            .as_ref()
            .filter(|s| s.alive.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Ok(s.clone());
        }
        let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
        let master = std::os::fd::AsFd::as_fd(&pty).try_clone_to_owned()?;
        let size = Size { cols: 80, rows: 24 };
        rustix::termios::tcsetwinsize(&master, size.winsize())?;
        // A clean environment: the runner's token and the panel key stay out of the shell.
        let mut child = pty_process::Command::new("bash")
            .args(["--login", "-i"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env("PS1", "\\w$ ")
            .current_dir(&self.workspace)
            .kill_on_drop(true)
            .spawn(pts)
            .map_err(std::io::Error::other)?;
        let (mut reader, pty) = pty.into_split();
        let (output, _) = broadcast::channel(1024);
        let shell = Arc::new(Shell {
            writer: tokio::sync::Mutex::new(Writer { pty, master, size }),
            output,
            scrollback: Mutex::new(VecDeque::new()),
            alive: std::sync::atomic::AtomicBool::new(true),
        });
        let s = shell.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let chunk = Bytes::copy_from_slice(&buf[..n]);
                let mut back = s.scrollback.lock().expect("lock");
                back.extend(chunk.iter());
                let excess = back.len().saturating_sub(SCROLLBACK);
                back.drain(..excess);
                s.output.send(Out::Bytes(chunk)).ok();
            }
            s.alive.store(false, std::sync::atomic::Ordering::SeqCst);
            child.kill().await.ok();
        });
        *slot = Some(shell.clone());
        Ok(shell)
    }

    /// Serves one browser's socket on the shared shell until it closes or `until` resolves (its
    /// access was taken back).
    pub async fn attach(
        &self,
        socket: WebSocket,
        writable: bool,
        until: impl std::future::Future<Output = ()>,
    ) {
        let (mut tx, mut rx) = socket.split();
        let shell = match self.shell().await {
            Ok(s) => s,
            Err(e) => {
                let why = format!("the shell could not start: {e}");
                tx.send(refusal("shell_failed", &why)).await.ok();
                return;
            }
        };
        // Under the writer's lock, which a resize holds while it sends its news: the size is
        // either in the hello or in a later `size` frame, never in neither.
        let writer = shell.writer.lock().await;
        let size = writer.size;
        let (snapshot, mut live) = {
            let back = shell.scrollback.lock().expect("lock");
            (
                Bytes::from(back.iter().copied().collect::<Vec<u8>>()),
                shell.output.subscribe(),
            )
        };
        drop(writer);
        let mut hello = size.json("hello");
        hello["writable"] = writable.into();
        if tx
            .send(Message::Text(hello.to_string().into()))
            .await
            .is_err()
            || tx.send(Message::Binary(snapshot)).await.is_err()
        {
            return;
        }
        // The socket's own answers (refusals) go out in order with the shell's output.
        let (answer, mut answers) = tokio::sync::mpsc::channel::<Message>(16);
        let out = tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    Some(frame) = answers.recv() => frame,
                    next = live.recv() => match next {
                        Ok(Out::Bytes(chunk)) => Message::Binary(chunk),
                        Ok(Out::Size(size)) => Message::Text(size.json("size").to_string().into()),
                        // A watcher this far behind has lost output: it is told, and reloads.
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let why = format!("{n} chunks of output were missed: reload the panel");
                            tx.send(refusal("lagged", &why)).await.ok();
                            break;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                };
                if tx.send(frame).await.is_err() {
                    break;
                }
            }
        });
        tokio::pin!(until);
        loop {
            let msg = tokio::select! {
                next = rx.next() => match next {
                    Some(Ok(msg)) => msg,
                    _ => break,
                },
                () = &mut until => break,
            };
            let refused = match take(&shell, msg, writable).await {
                Ok(refused) => refused,
                Err(_) => break,
            };
            if let Some(frame) = refused {
                if answer.send(frame).await.is_err() {
                    break;
                }
            }
        }
        out.abort();
    }
}

/// Does what one frame from a browser asks of the shell: nothing, or a refusal to send back, or
/// an error once the shell can no longer be written to.
async fn take(shell: &Shell, msg: Message, writable: bool) -> std::io::Result<Option<Message>> {
    let text = match (msg, writable) {
        (Message::Text(text), true) => text,
        (Message::Text(_) | Message::Binary(_), false) => {
            return Ok(Some(refusal(
                "read_only",
                "you are watching: your keys and sizes do not reach the shell",
            )))
        }
        (Message::Binary(_), true) => {
            return Ok(Some(refusal(
                "bad_frame",
                "terminal messages are JSON text frames",
            )))
        }
        // Pings, pongs and the close are the socket's own business.
        _ => return Ok(None),
    };
    match serde_json::from_str::<Incoming>(&text) {
        Ok(Incoming::Input { data }) => {
            let mut w = shell.writer.lock().await;
            w.keep_size()?;
            w.pty.write_all(data.as_bytes()).await?;
            Ok(None)
        }
        Ok(Incoming::Resize { cols, rows }) if cols > 0 && rows > 0 => {
            let mut w = shell.writer.lock().await;
            Ok(match w.resize(Size { cols, rows }) {
                Ok(()) => {
                    shell.output.send(Out::Size(w.size)).ok();
                    None
                }
                Err(e) => Some(refusal("resize_failed", &e.to_string())),
            })
        }
        Ok(Incoming::Resize { .. }) => Ok(Some(refusal(
            "bad_frame",
            "a terminal has at least one row and column",
        ))),
        Err(e) => Ok(Some(refusal(
            "bad_frame",
            &format!("not a terminal message: {e}"),
        ))),
    }
}

/// A control frame refusing what the browser sent, with a stable code.
fn refusal(code: &str, message: &str) -> Message {
    let msg = serde_json::json!({"type": "error", "code": code, "message": message});
    Message::Text(msg.to_string().into())
}

pub const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Terminal</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="xterm.css">
<style>
  html, body { margin: 0; height: 100%; background: #0a0c10; }
  #term { position: absolute; inset: 0; padding: 6px; }
  #note { position: absolute; right: 10px; top: 8px; z-index: 3; font: 12px system-ui; color: #e0a43a;
          background: #2a2413; padding: 3px 8px; border-radius: 6px; display: none; }
</style></head>
<body><div id="note">read-only: you are watching</div><div id="term"></div>
<script src="xterm.js"></script><script src="addon-fit.js"></script>
<script>
  const term = new Terminal({ cursorBlink: true, fontSize: 13, convertEol: false,
    fontFamily: 'ui-monospace, Menlo, Consolas, monospace', theme: { background: '#0a0c10' } });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  // xterm measures its font when it opens: in a hidden panel (a phone's) everything measures 0,
  // so it opens once its box has a size, and writes before then are kept.
  const box = document.getElementById('term');
  new ResizeObserver(() => {
    if (box.clientWidth === 0 || box.clientHeight === 0) return;
    if (!term.element) term.open(box);
    resize();
  }).observe(box);
  let writable = false;
  let shell = null; // the shell's size, which a viewer draws at
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host
    + location.pathname.replace(/\/?$/, '/') + 'ws';
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const send = (m) => ws.readyState === 1 && ws.send(JSON.stringify(m));
  const resize = () => {
    if (!term.element) return;
    if (writable) {
      fit.fit();
      send({ type: 'resize', cols: term.cols, rows: term.rows });
    } else if (shell) {
      term.resize(shell.cols, shell.rows);
    }
  };
  ws.onmessage = (e) => {
    if (typeof e.data !== 'string') { term.write(new Uint8Array(e.data)); return; }
    const m = JSON.parse(e.data);
    if (m.type === 'hello') {
      writable = m.writable;
      shell = m;
      document.getElementById('note').style.display = writable ? 'none' : 'block';
      resize();
    } else if (m.type === 'size') {
      // Viewers draw at the shell's size, so its output lines up for them too.
      shell = m;
      if (!writable) resize();
    } else if (m.type === 'error') { term.write('\r\n' + m.message + '\r\n'); }
  };
  ws.onclose = () => term.write('\r\n[disconnected: reload the panel to reconnect]\r\n');
  term.onData((d) => { if (writable) send({ type: 'input', data: d }); });
  window.addEventListener('resize', resize);
  window.terminal = term;
</script></body></html>
"#;

/// xterm.js, from the npm registry at build time (see package.json), never fetched at run time.
pub const XTERM_JS: &str = include_str!("../../../node_modules/@xterm/xterm/lib/xterm.js");
pub const XTERM_CSS: &str = include_str!("../../../node_modules/@xterm/xterm/css/xterm.css");
pub const FIT_JS: &str = include_str!("../../../node_modules/@xterm/addon-fit/lib/addon-fit.js");

#[cfg(test)]
mod tests {
    use super::*;

    /// What the shell sees as its size: the PTY's other end, as `stty size` asks it.
    fn seen(pts: &pty_process::Pts) -> (u16, u16) {
        let ws = rustix::termios::tcgetwinsize(pts).unwrap();
        (ws.ws_row, ws.ws_col)
    }

    #[tokio::test]
    async fn a_resize_readline_undid_is_put_back_before_the_shell_reads_input() {
        let (pty, pts) = pty_process::open().unwrap();
        let master = std::os::fd::AsFd::as_fd(&pty).try_clone_to_owned().unwrap();
        let (_reader, pty) = pty.into_split();
        let old = Size { cols: 80, rows: 24 };
        let mut w = Writer {
            pty,
            master,
            size: old,
        };
        w.resize(Size {
            cols: 101,
            rows: 33,
        })
        .unwrap();
        assert_eq!(seen(&pts), (33, 101));
        // readline writes back the size it read just before the resize.
        rustix::termios::tcsetwinsize(&pts, old.winsize()).unwrap();
        assert_eq!(seen(&pts), (24, 80));
        w.keep_size().unwrap();
        assert_eq!(seen(&pts), (33, 101));
    }
}
