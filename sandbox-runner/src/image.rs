//! Checks of the sandbox image definition (`sandbox/Dockerfile`) against the runner itself, since
//! the image cannot be built here: every variable it sets is one the runner reads, the port it
//! exposes is the gateway's, and the versions it pins are the ones the platform is tested with.

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    const DOCKERFILE: &str = include_str!("../../sandbox/Dockerfile");

    fn env_block() -> Vec<(String, String)> {
        let joined = DOCKERFILE.replace("\\\n", " ");
        joined
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ENV "))
            .flat_map(|rest| rest.split_whitespace())
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn arg(name: &str) -> String {
        DOCKERFILE
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ARG {name}=")))
            .unwrap_or_else(|| panic!("ARG {name}"))
            .to_owned()
    }

    fn runner_env_vars() -> Vec<String> {
        let cli = crate::Cli::command();
        let run = cli.find_subcommand("run").expect("run");
        run.get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_variable_the_image_sets_is_read_by_the_runner() {
        let known = runner_env_vars();
        let env = env_block();
        assert!(env.len() >= 7, "{env:?}");
        for (k, _) in &env {
            assert!(
                known.contains(k),
                "{k} is not a `sandbox-runner run` variable"
            );
        }
        for secret in [
            "AGENT_OPS_RUNNER_TOKEN",
            "AGENT_OPS_PANEL_KEY",
            "AGENT_OPS_SESSION_ID",
        ] {
            assert!(
                env.iter().all(|(k, _)| k != secret),
                "{secret} must come from the provider"
            );
        }
    }

    #[test]
    fn the_exposed_port_is_the_gateway_and_paths_match_the_programs() {
        let env: std::collections::HashMap<_, _> = env_block().into_iter().collect();
        let listen = &env["AGENT_OPS_GATEWAY_LISTEN"];
        let port = listen.rsplit(':').next().unwrap();
        assert!(
            DOCKERFILE.contains(&format!("\nEXPOSE {port}\n")),
            "EXPOSE {port}"
        );
        assert_eq!(DOCKERFILE.matches("\nEXPOSE ").count(), 1, "one listener");
        assert!(env["AGENT_OPS_WEBSOCKIFY"].starts_with("/opt/websockify/"));
        assert!(DOCKERFILE.contains("python3 -m venv /opt/websockify"));
        assert_eq!(env["AGENT_OPS_NOVNC_DIR"], "/usr/share/novnc");
        assert!(
            DOCKERFILE.contains(" novnc "),
            "the novnc package provides it"
        );
        for package in ["xvfb", "x11vnc", "chromium", "git", "ripgrep"] {
            assert!(DOCKERFILE.contains(&format!(" {package}")), "{package}");
        }
        assert!(DOCKERFILE.contains("\nUSER agent\n"), "a non-root user");
        assert!(DOCKERFILE.contains("ENTRYPOINT [\"/usr/local/bin/sandbox-runner\", \"run\"]"));
        assert_eq!(env["AGENT_OPS_OPENCODE_BIN"], "/usr/local/bin/opencode");
    }

    #[test]
    fn pinned_versions_are_the_tested_ones() {
        let package = include_str!("../../package.json");
        let manifest: serde_json::Value = serde_json::from_str(package).unwrap();
        assert_eq!(
            manifest["devDependencies"]["opencode-ai"].as_str(),
            Some(arg("OPENCODE_VERSION").as_str())
        );
        let setup = include_str!("../../scripts/setup.sh");
        assert!(setup.contains(&format!("WEBSOCKIFY_VERSION={}", arg("WEBSOCKIFY_VERSION"))));
    }
}
