//! Which panels this host's sandboxes can offer, decided once at start-up from what is installed,
//! with a plain reason for each one that is missing.

use std::path::{Path, PathBuf};

use agent_ops_protocol::api::{PanelInfo, PanelKind};

/// The programs behind the panels, as found on this host.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub xvfb: Option<PathBuf>,
    pub x11vnc: Option<PathBuf>,
    pub websockify: Option<PathBuf>,
    pub novnc_dir: Option<PathBuf>,
    pub code_server: Option<PathBuf>,
}

impl Tools {
    pub fn find(websockify: Option<&Path>, novnc_dir: &Path, code_server: &Path) -> Tools {
        let resolve = |p: &Path| super::resolve_program(p).ok();
        Tools {
            xvfb: resolve(Path::new("Xvfb")),
            x11vnc: resolve(Path::new("x11vnc")),
            websockify: websockify.and_then(resolve),
            novnc_dir: novnc_dir
                .join("vnc.html")
                .is_file()
                .then(|| novnc_dir.to_owned()),
            code_server: resolve(code_server),
        }
    }

    /// The desktop's programs, when all of them are here.
    pub fn desktop(&self) -> Option<(&Path, &Path)> {
        match (&self.xvfb, &self.x11vnc, &self.websockify, &self.novnc_dir) {
            (Some(_), Some(_), Some(ws), Some(web)) => Some((ws, web)),
            _ => None,
        }
    }
}

pub fn offered(tools: &Tools) -> Vec<PanelInfo> {
    let missing: Vec<&str> = [
        ("Xvfb", tools.xvfb.is_some()),
        ("x11vnc", tools.x11vnc.is_some()),
        ("websockify", tools.websockify.is_some()),
        ("noVNC", tools.novnc_dir.is_some()),
    ]
    .into_iter()
    .filter(|(_, found)| !found)
    .map(|(name, _)| name)
    .collect();
    PanelKind::ALL
        .into_iter()
        .map(|kind| {
            let reason = match kind {
                PanelKind::Terminal | PanelKind::Preview => None,
                PanelKind::Browser if missing.is_empty() => None,
                PanelKind::Browser => Some(format!(
                    "this host's sandboxes have no desktop: {} not installed",
                    missing.join(", ")
                )),
                PanelKind::Vscode if tools.code_server.is_some() => None,
                PanelKind::Vscode => Some(
                    "code-server is not installed on this host (the sandbox image has it)".into(),
                ),
            };
            PanelInfo {
                kind,
                available: reason.is_none(),
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_and_previews_are_always_offered_and_missing_tools_are_named() {
        let none = offered(&Tools::default());
        let get = |v: &[PanelInfo], k| v.iter().find(|p| p.kind == k).cloned().unwrap();
        assert!(get(&none, PanelKind::Terminal).available);
        assert!(get(&none, PanelKind::Preview).available);
        let browser = get(&none, PanelKind::Browser);
        assert!(!browser.available);
        assert!(browser
            .reason
            .unwrap()
            .contains("Xvfb, x11vnc, websockify, noVNC"));
        let all = Tools {
            xvfb: Some("/x".into()),
            x11vnc: Some("/v".into()),
            websockify: Some("/w".into()),
            novnc_dir: Some("/n".into()),
            code_server: Some("/c".into()),
        };
        assert!(offered(&all).iter().all(|p| p.available));
    }
}
