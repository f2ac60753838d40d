//! How the runner trusts the Worker it dials (its link over `wss://`, the agent's model calls
//! over `https://`): the public web's roots (Mozilla's, built in, so an image needs no CA
//! bundle), and the certificates of a private authority when the provider names one.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

pub fn client_config(extra_roots: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_roots {
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_roots_are_built_in() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn a_named_authority_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(client_config(Some(&empty))
            .unwrap_err()
            .contains("no certificate"));
        let missing = dir.join("missing.pem");
        assert!(client_config(Some(&missing)).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
