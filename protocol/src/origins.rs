//! The app's origin and the sandboxes' origins. A page an app in a sandbox serves is the work of
//! whoever controls that sandbox (a collaborator, a repository, a prompt-injected agent), so it
//! never runs on the app's origin, where its script would act as the viewer on the API: each
//! session's sandbox has an origin of its own, made from a template such as
//! `https://{session}.sandbox.example-usercontent.com` (locally `http://{session}.sandbox.localhost:8787`,
//! which Chromium resolves to loopback). Pure, so the Worker's routing by `Host` is unit-tested.

/// `SANDBOX_ORIGIN`: a scheme, a host with `{session}` as its first label, and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOrigins {
    scheme: String,
    /// The host after `{session}.`, lowercase.
    suffix: String,
    /// `:port`, or empty.
    port: String,
}

impl SandboxOrigins {
    pub fn parse(template: &str) -> Result<SandboxOrigins, String> {
        let bad = || {
            format!(
                "SANDBOX_ORIGIN must look like https://{{session}}.sandbox.example.com[:port], not `{template}`"
            )
        };
        let (scheme, rest) = template.split_once("://").ok_or_else(bad)?;
        if !matches!(scheme, "http" | "https") {
            return Err(bad());
        }
        let authority = rest.trim_end_matches('/');
        let host_port = authority.strip_prefix("{session}.").ok_or_else(bad)?;
        let (suffix, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (h, format!(":{p}"))
            }
            Some(_) => return Err(bad()),
            None => (host_port, String::new()),
        };
        let label_ok =
            |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !suffix.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(SandboxOrigins {
            scheme: scheme.to_owned(),
            suffix: suffix.to_ascii_lowercase(),
            port,
        })
    }

    /// The origin of one session's sandbox.
    pub fn origin(&self, session: &str) -> String {
        format!("{}://{session}.{}{}", self.scheme, self.suffix, self.port)
    }

    /// The session whose sandbox a request's `Host` names, if it names one. Only a host of the
    /// exact form `<session>.<suffix>[:port]` does; the label must be a session id's shape.
    pub fn session_of(&self, host: &str) -> Option<String> {
        let host = host.to_ascii_lowercase();
        let host = match self.port.as_str() {
            "" if host.contains(':') => return None,
            "" => host.as_str(),
            port => host.strip_suffix(port)?,
        };
        let label = host.strip_suffix(self.suffix.as_str())?.strip_suffix('.')?;
        let is_id = label.len() == 32
            && label
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        is_id.then(|| label.to_owned())
    }

    /// Whether the template's scheme is https (cookies then carry `Secure`).
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }
}

/// The `Content-Security-Policy` of every sandbox response: only the app may frame it, so
/// another session's page (or any other site) cannot embed a panel and steer it.
pub fn frame_ancestors(app_origin: &str) -> String {
    format!("frame-ancestors {app_origin}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn each_session_has_an_origin_of_its_own() {
        let o = SandboxOrigins::parse("http://{session}.sandbox.localhost:8787").unwrap();
        assert_eq!(o.origin(ID), format!("http://{ID}.sandbox.localhost:8787"));
        assert_eq!(
            o.session_of(&format!("{ID}.sandbox.localhost:8787"))
                .as_deref(),
            Some(ID)
        );
        assert_eq!(
            o.session_of(&format!("{}.SANDBOX.localhost:8787", ID.to_uppercase()))
                .as_deref(),
            Some(ID)
        );
        let https = SandboxOrigins::parse("https://{session}.sb.example.com/").unwrap();
        assert!(https.is_https());
        assert_eq!(
            https.session_of(&format!("{ID}.sb.example.com")).as_deref(),
            Some(ID)
        );
    }

    #[test]
    fn only_a_session_host_names_a_session() {
        let o = SandboxOrigins::parse("http://{session}.sandbox.localhost:8787").unwrap();
        for host in [
            "127.0.0.1:8787",
            "sandbox.localhost:8787",
            "localhost:8787",
            &format!("{ID}.sandbox.localhost:9999"),
            &format!("{ID}.sandbox.localhost"),
            &format!("x.{ID}.sandbox.localhost:8787"),
            &format!("{ID}x.sandbox.localhost:8787"),
            &format!("{ID}.evil.localhost:8787"),
            &format!("{ID}.sandbox.localhost.evil:8787"),
            "abc.sandbox.localhost:8787",
        ] {
            assert_eq!(o.session_of(host), None, "{host}");
        }
    }

    #[test]
    fn templates_are_checked() {
        for bad in [
            "",
            "sandbox.localhost",
            "ftp://{session}.x",
            "http://x.{session}.y",
            "http://{session}.x:port",
            "http://{session}.x/path/{session}",
            "http://{session}.",
        ] {
            assert!(SandboxOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
