//! `cluster add-client`: another client of the cluster, with its own certificate and role.
//!
//! What holds: the client's certificate is issued by the cluster CA (so `ca.key` must be at
//! hand), its private key is written with mode `0600` from its first byte, and its
//! fingerprint and role are added to every node's `[[clients]]` — all of them or, if a check
//! fails first (a bad or taken name, a missing CA key, an unreadable node config), none.
//! Nodes read their config when they start: a running node admits the new client after its
//! next restart.

use std::path::{Path, PathBuf};

use super::{ClusterDir, ClusterError, io};
use crate::access::{ClientName, Role};
use crate::config::{
    AuthorizedClient, ClientProfile, ConfigError, NodeConfig, TlsFiles, write_atomic, write_secret,
};
use crate::pki::ClusterCa;

/// What [`ClusterDir::add_client`] wrote.
#[derive(Debug, Clone)]
pub struct AddedClient {
    /// The client's profile (`DIR/clients/<name>/client.toml`), for `--client`.
    pub profile: PathBuf,
    /// Its certificate's fingerprint, as the nodes list it.
    pub fingerprint: String,
    /// The node configs that now list it.
    pub nodes: Vec<PathBuf>,
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    toml::from_str(&text).map_err(|e| {
        ClusterError::Config(ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    })
}

impl ClusterDir {
    /// `DIR/clients/<name>`: the folder of the client `name`.
    #[must_use]
    pub fn client_dir(&self, name: &ClientName) -> PathBuf {
        self.dir.join("clients").join(name.as_str())
    }

    /// Every client profile of the cluster: `DIR/client.toml` and those of `add-client`.
    #[must_use]
    pub fn profiles(&self) -> Vec<PathBuf> {
        let mut out = vec![self.dir.join("client.toml")];
        if let Ok(entries) = std::fs::read_dir(self.dir.join("clients")) {
            let mut more: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path().join("client.toml")))
                .filter(|p| p.is_file())
                .collect();
            more.sort();
            out.extend(more);
        }
        out
    }

    /// Issues client `name` a certificate from the cluster CA, writes its profile, certificate
    /// and key to `DIR/clients/<name>/` and lists it with `role` in every node's config.
    ///
    /// # Errors
    /// [`ClusterError::Usage`] if the folder is no cluster, `ca.key` is missing, or the name
    /// is taken (a folder of that name, or a node already listing it); I/O, config and
    /// certificate errors.
    pub fn add_client(&self, name: &ClientName, role: Role) -> Result<AddedClient, ClusterError> {
        let file = self.read()?;
        let ca_key_path = self.dir.join("ca.key");
        let ca_key = std::fs::read_to_string(&ca_key_path).map_err(|e| {
            ClusterError::Usage(format!(
                "{}: {e}: adding a client needs the cluster CA's key; bring it back to this \
                 folder for the time of the command",
                ca_key_path.display()
            ))
        })?;
        let ca_pem_path = self.dir.join("ca.pem");
        let ca_pem = std::fs::read_to_string(&ca_pem_path).map_err(io(&ca_pem_path))?;
        let folder = self.client_dir(name);
        if folder.exists() {
            return Err(ClusterError::Usage(format!(
                "client {name} exists already ({})",
                folder.display()
            )));
        }
        // Every node's config, checked before anything is written.
        let mut configs = Vec::new();
        for id in 1..=file.nodes {
            let path = self.node_config(id);
            let config: NodeConfig = read_toml(&path)?;
            if config.clients.iter().any(|c| c.name == name.as_str()) {
                return Err(ClusterError::Usage(format!(
                    "node {id} already lists a client named {name} ({})",
                    path.display()
                )));
            }
            configs.push((path, config));
        }
        let base: ClientProfile = read_toml(&self.dir.join("client.toml"))?;
        let ca = ClusterCa::load(&file.name, &ca_pem, &ca_key)?;
        let issued = ca.issue_client(name.as_str())?;
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        write_atomic(&folder.join("client.pem"), issued.cert_pem.as_bytes())?;
        write_secret(&folder.join("client.key"), issued.key_pem.as_bytes())?;
        let profile = ClientProfile {
            tls: TlsFiles {
                ca: PathBuf::from("../../ca.pem"),
                cert: PathBuf::from("client.pem"),
                key: PathBuf::from("client.key"),
            },
            key_file: PathBuf::from("../../cluster-key.json"),
            catalog: PathBuf::from("catalog.json"),
            manifest: PathBuf::from("../../manifest.json"),
            ..base
        };
        let profile_path = folder.join("client.toml");
        profile.save(&profile_path)?;
        let mut nodes = Vec::new();
        for (path, mut config) in configs {
            config.clients.push(AuthorizedClient {
                name: name.as_str().to_owned(),
                fingerprint: issued.fingerprint.clone(),
                role,
            });
            config.save(&path)?;
            nodes.push(path);
        }
        Ok(AddedClient {
            profile: profile_path,
            fingerprint: issued.fingerprint,
            nodes,
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::cluster::InitOptions;

    fn mode(path: &Path) -> std::io::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
    }

    #[test]
    fn every_secret_of_a_cluster_is_0600_and_added_clients_are_listed_everywhere()
    -> Result<(), Box<dyn std::error::Error>> {
        let temp = tempfile::tempdir()?;
        let dir = ClusterDir::new(&temp.path().join("c"));
        dir.init(&InitOptions {
            nodes: 3,
            threshold: 2,
            base_port: None,
            host: "127.0.0.1".into(),
            remote: false,
        })?;
        let mut secrets = vec![dir.dir.join("ca.key"), dir.dir.join("client.key")];
        for id in 1..=3 {
            secrets.push(dir.node_dir(id).join("node.key"));
            secrets.push(dir.node_dir(id).join("at-rest.key"));
            secrets.push(dir.node_dir(id).join("data/secrets.bin"));
            // The owner made by init is an admin.
            let config = NodeConfig::load(&dir.node_config(id))?;
            assert_eq!(config.raw.clients.len(), 1);
            assert_eq!(config.raw.clients[0].role, Role::Admin);
        }
        let name: ClientName = "searcher".parse()?;
        let added = dir.add_client(&name, Role::Search)?;
        secrets.push(dir.client_dir(&name).join("client.key"));
        for path in &secrets {
            assert_eq!(mode(path)?, 0o600, "{}", path.display());
        }
        assert_eq!(
            mode(&dir.client_dir(&name).join("client.pem"))? & 0o600,
            0o600
        );
        let profile = ClientProfile::load(&added.profile)?;
        assert!(profile.raw.tls.key.is_file() && profile.raw.tls.ca.is_file());
        assert_eq!(
            crate::pki::fingerprint_pem(&std::fs::read_to_string(&profile.raw.tls.cert)?)?,
            added.fingerprint
        );
        for id in 1..=3 {
            let config = NodeConfig::load(&dir.node_config(id))?;
            let listed = config.raw.clients.iter().find(|c| c.name == "searcher");
            assert_eq!(
                listed.map(|c| (c.fingerprint.as_str(), c.role)),
                Some((added.fingerprint.as_str(), Role::Search))
            );
        }
        assert_eq!(dir.profiles().len(), 2);
        // A name taken, by a folder or by a node's config, is refused and changes nothing.
        assert!(matches!(
            dir.add_client(&name, Role::Owner),
            Err(ClusterError::Usage(_))
        ));
        assert!(matches!(
            dir.add_client(&"owner".parse()?, Role::Owner),
            Err(ClusterError::Usage(_))
        ));
        assert!(!dir.client_dir(&"owner".parse()?).exists());
        // Without the CA key, nothing is issued.
        std::fs::rename(dir.dir.join("ca.key"), dir.dir.join("ca.key.offline"))?;
        assert!(matches!(
            dir.add_client(&"later".parse()?, Role::Owner),
            Err(ClusterError::Usage(_))
        ));
        Ok(())
    }
}
