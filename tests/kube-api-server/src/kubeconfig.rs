//! A kubeconfig pointing clients at the test server.
//!
//! Clients reach the test server the same way they reach a real cluster from
//! a workstation: through a kubeconfig file. The token is never checked; it
//! only makes the document look like an ordinary user entry.

/// Renders a single-cluster, single-user kubeconfig for `server_url`.
pub fn render(server_url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-api-server
  cluster:
    server: {server_url}
users:
- name: tester
  user:
    token: kube-api-server-test-token
contexts:
- name: kube-api-server
  context:
    cluster: kube-api-server
    user: tester
    namespace: default
current-context: kube-api-server
"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_server_url() {
        let text = super::render("http://127.0.0.1:1234");
        assert!(text.contains("    server: http://127.0.0.1:1234\n"));
        assert!(text.contains("current-context: kube-api-server"));
    }
}
