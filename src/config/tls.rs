//! The `tls:` section: certificates, and which ports speak TLS (Redis's `tls-*` options).

use serde::{Deserialize, Serialize};

/// `tls:` — TLS 1.2/1.3 (rustls) on the client port and on the group port. Off by default.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// This server's certificate chain, PEM, leaf first (`tls-cert-file`). It is also the
    /// client certificate this server (and the CLI) presents to its peers. Required when
    /// `clients` or `cluster` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// The private key of `cert_file`, PEM (PKCS#8, PKCS#1 or SEC1) (`tls-key-file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// CA certificates, PEM, that client and peer certificates must chain to, and that
    /// servers (for forwarding, the CLI) verify each other against (`tls-ca-cert-file`).
    /// Required when `clients` or `cluster` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The client port speaks TLS only (`tls-port` in place of `port`: one port, so
    /// CLUSTER SLOTS and MOVED addresses stay right). Default: false.
    pub clients: bool,
    /// Whether clients of the client port must present a certificate signed by `ca_file`
    /// (`tls-auth-clients`): `no`, `optional` (checked when given) or `yes`. Default: `yes`.
    pub auth_clients: AuthClients,
    /// The group port (replication, control plane, voters) speaks mutual TLS: both sides
    /// present a certificate signed by `ca_file` (`tls-replication`, `tls-cluster`).
    /// Default: false.
    pub cluster: bool,
    /// The name every peer's certificate is checked against. Default: none, the host of
    /// the address connected to (an IP address in most configs, which the certificate
    /// must then list as an IP subject alternative name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// `tls.auth_clients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthClients {
    /// No client certificate is asked for.
    No,
    /// A client certificate is asked for and checked when given; clients without one
    /// are served.
    Optional,
    /// Clients without a valid certificate are refused in the handshake.
    #[default]
    Yes,
}

impl TlsConfig {
    /// Whether any port speaks TLS.
    pub fn enabled(&self) -> bool {
        self.clients || self.cluster
    }

    /// Reports each problem as (field, message): missing files when TLS is on, files that
    /// cannot be read or parsed, a key that does not match its certificate.
    pub fn validate(&self, err: &mut impl FnMut(String, String)) {
        if !self.enabled() {
            return;
        }
        let mut missing = false;
        for (field, v) in [
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
            ("ca_file", &self.ca_file),
        ] {
            if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                missing = true;
                err(
                    format!("tls.{field}"),
                    "is required because tls.clients or tls.cluster is true".into(),
                );
            }
        }
        if self
            .server_name
            .as_deref()
            .is_some_and(|n| rustls_pki_types::ServerName::try_from(n.to_string()).is_err())
        {
            err(
                "tls.server_name".into(),
                "is not a valid DNS name or IP address".into(),
            );
        }
        if !missing && let Err((field, why)) = crate::tls::Tls::new(self) {
            err(format!("tls.{field}"), why);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn errors(yaml: &str) -> String {
        match Config::from_yaml(yaml, "t.yaml") {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn tls_on_needs_its_files() {
        let e = errors("tls: { clients: true }");
        assert!(e.contains("tls.cert_file: is required"), "{e}");
        assert!(e.contains("tls.key_file: is required"), "{e}");
        assert!(e.contains("tls.ca_file: is required"), "{e}");
        assert_eq!(errors("tls: { auth_clients: optional }"), "");
    }

    #[test]
    fn unreadable_files_and_bad_values_are_named() {
        let e = errors(
            "tls: { cluster: true, cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem, ca_file: /nonexistent/ca.pem }",
        );
        assert!(
            e.contains("tls.cert_file: cannot read /nonexistent/c.pem"),
            "{e}"
        );
        let e = errors("tls: { auth_clients: maybe }");
        assert!(e.contains("auth_clients"), "{e}");
        let e = errors("tls: { clients: true, server_name: 'a b' }");
        assert!(e.contains("tls.server_name: is not a valid"), "{e}");
    }
}
