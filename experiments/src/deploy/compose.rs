//! `tandem deploy compose`: a Compose file from a cluster file. One service per replica
//! (its host name, a fixed address on a private network, its key mounted read-only as a
//! secret, a data volume for its write-ahead log, a health check by `tandem health`
//! from its metrics file), one load-client service per client key, and `./results`
//! bind-mounted so metrics and client summaries land on the host.
//!
//! The same file deploys on a Swarm (`docker stack deploy -c compose.yaml tandem`):
//! the replicas' names resolve through `endpoint_mode: dnsrr` (each name is the task's
//! own address), placement follows node labels `tandem.replica == i` and
//! `tandem.client == j`; Swarm ignores the fixed addresses and `depends_on`.
//!
//! The YAML is written by hand: every scalar the file takes from outside (names,
//! paths, the image) is written as a double-quoted JSON string, which YAML reads back
//! unchanged.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::cluster::{CLUSTER_TOML, ClusterFile, KeyFile, ReplicaAddress};
use crate::deploy::image::BINARY_IN_IMAGE;

/// Where a replica's data volume is mounted in its container, and the `--data-dir` its
/// command is given: the write-ahead log (`<dir>/r<id>/wal`) lives on the volume and
/// survives a container's restart or re-creation.
pub const DATA_IN_CONTAINER: &str = "/data";

/// The private network replicas and clients share, an IPv4 /24 like `10.77.0.0/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet24 {
    /// The first three octets.
    pub prefix: [u8; 3],
}

impl Subnet24 {
    /// The default: `10.77.0.0/24`.
    pub const DEFAULT: Subnet24 = Subnet24 {
        prefix: [10, 77, 0],
    };

    /// The address of host `last` (the fourth octet).
    pub fn host(&self, last: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, last)
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        ip.octets()[..3] == self.prefix
    }
}

impl std::str::FromStr for Subnet24 {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| anyhow!("`{s}` is not a network like 10.77.0.0/24"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|e| anyhow!("`{s}`: {e}; expected a network like 10.77.0.0/24"))?;
        if len != "24" || ip.octets()[3] != 0 {
            bail!("`{s}`: only /24 networks ending in .0 are supported, like 10.77.0.0/24");
        }
        let [a, b, c, _] = ip.octets();
        Ok(Subnet24 { prefix: [a, b, c] })
    }
}

impl std::fmt::Display for Subnet24 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", self.host(0))
    }
}

/// The fourth octet of replica 0's address when the cluster file names hosts.
pub const FIRST_REPLICA_HOST: u8 = 10;
/// The fourth octet of client 0's address.
pub const FIRST_CLIENT_HOST: u8 = 210;
/// The most replicas a generated network addresses (10 to 209).
pub const MAX_REPLICAS: usize = (FIRST_CLIENT_HOST - FIRST_REPLICA_HOST) as usize;
/// The most clients (210 to 254).
pub const MAX_CLIENTS: usize = (255 - FIRST_CLIENT_HOST) as usize;

/// What a load-client service runs: `tandem client` flags.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientLoad {
    /// Seconds to submit for.
    pub duration: f64,
    /// Seconds left out of the statistics at the start.
    pub warmup: f64,
    /// Open loop at this many transactions per second (per client), or closed loop.
    pub rate: Option<f64>,
    /// Closed loop: requests outstanding per client.
    pub window: usize,
}

impl Default for ClientLoad {
    /// 30 s, 2 s warm-up, a closed loop of 256 outstanding requests.
    fn default() -> Self {
        ClientLoad {
            duration: 30.0,
            warmup: 2.0,
            rate: None,
            window: 256,
        }
    }
}

/// What `tandem deploy compose` needs besides the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ComposeOptions {
    /// The image every service runs (`tandem image` builds it).
    pub image: String,
    /// The private network.
    pub subnet: Subnet24,
    /// What the client services run.
    pub load: ClientLoad,
    /// Milliseconds between a replica's metrics lines.
    pub metrics_interval_ms: u64,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            image: crate::deploy::image::DEFAULT_TAG.to_string(),
            subnet: Subnet24::DEFAULT,
            load: ClientLoad::default(),
            metrics_interval_ms: 1000,
        }
    }
}

/// One replica's service: its name and fixed address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaService {
    /// The replica id.
    pub id: u32,
    /// The service (and host) name: the cluster file's host name, or `r<id>` when the
    /// file gives an IP address.
    pub name: String,
    /// Its fixed address on the private network.
    pub ip: Ipv4Addr,
}

/// Where each replica's service lives: a host name in the cluster file becomes the
/// service name (at `subnet`'s `.10 + id`); an IPv4 address becomes the fixed address
/// of service `r<id>` and must be inside `subnet`. IPv6 addresses are refused.
pub fn replica_services(cluster: &ClusterFile, subnet: Subnet24) -> Result<Vec<ReplicaService>> {
    if cluster.replicas.len() > MAX_REPLICAS {
        bail!(
            "{} replicas: a generated network addresses at most {MAX_REPLICAS}",
            cluster.replicas.len()
        );
    }
    let mut services: Vec<ReplicaService> = Vec::new();
    for r in &cluster.replicas {
        let service = match &r.address {
            ReplicaAddress::Host { name, .. } => ReplicaService {
                id: r.id,
                name: name.clone(),
                ip: subnet.host(FIRST_REPLICA_HOST + r.id as u8),
            },
            ReplicaAddress::Ip(addr) => {
                let std::net::IpAddr::V4(ip) = addr.ip() else {
                    bail!(
                        "replica {}: {addr} is IPv6; the generated network is IPv4",
                        r.id
                    );
                };
                if !subnet.contains(ip) {
                    bail!(
                        "replica {}: {ip} is outside the network {subnet} (use --subnet, or host names)",
                        r.id
                    );
                }
                ReplicaService {
                    id: r.id,
                    name: format!("r{}", r.id),
                    ip,
                }
            }
        };
        if let Some(other) = services
            .iter()
            .find(|s| s.name == service.name || s.ip == service.ip)
        {
            bail!(
                "replicas {} and {} would share the service {} or the address {}",
                other.id,
                r.id,
                service.name,
                service.ip
            );
        }
        services.push(service);
    }
    Ok(services)
}

/// A YAML double-quoted scalar (JSON's string syntax is a subset of YAML's).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string encodes")
}

/// A YAML flow sequence of quoted strings.
fn flow(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The file name of a member's key inside the deployment folder (`keys/<id>.key`) and
/// the secret's name (`<id>-key`).
fn secret_name(member: &str) -> String {
    format!("{member}-key")
}

/// The Compose file for `cluster` with `clients` client services (client ids
/// `0..clients`, each needing its key file `keys/c<j>.key` beside the file).
pub fn compose_yaml(
    cluster: &ClusterFile,
    clients: usize,
    options: &ComposeOptions,
) -> Result<String> {
    let replicas = replica_services(cluster, options.subnet)?;
    if clients > MAX_CLIENTS {
        bail!("{clients} clients: a generated network addresses at most {MAX_CLIENTS}");
    }
    if clients > cluster.clients.len() {
        bail!(
            "{clients} client services but the cluster file lists {} [[client]] entries",
            cluster.clients.len()
        );
    }
    let cluster_in = format!("/cluster/{CLUSTER_TOML}");
    let mut y = String::new();
    let w = &mut y;
    writeln!(
        w,
        "# Generated by `tandem deploy compose` for {} replicas and {clients} clients.",
        replicas.len()
    )?;
    writeln!(
        w,
        "# Local: `docker compose up -d` (or docker-compose); results land in ./results."
    )?;
    writeln!(
        w,
        "# Swarm: label nodes tandem.replica=<i> / tandem.client=<j>, then"
    )?;
    writeln!(
        w,
        "#   `docker stack deploy -c compose.yaml tandem` (fixed addresses are ignored there)."
    )?;
    writeln!(w, "services:")?;
    for r in &replicas {
        let member = format!("r{}", r.id);
        let metrics = format!("/results/replica-{}.metrics.jsonl", r.id);
        let key_in = format!("/run/secrets/{member}.key");
        let command = [
            "replica".to_string(),
            "--cluster".into(),
            cluster_in.clone(),
            "--id".into(),
            r.id.to_string(),
            "--key".into(),
            key_in,
            "--metrics".into(),
            metrics.clone(),
            "--metrics-interval-ms".into(),
            options.metrics_interval_ms.to_string(),
            "--data-dir".into(),
            DATA_IN_CONTAINER.into(),
        ];
        let health = [
            "CMD".to_string(),
            BINARY_IN_IMAGE.into(),
            "health".into(),
            "--metrics".into(),
            metrics,
            "--max-age-ms".into(),
            (options.metrics_interval_ms.saturating_mul(5).max(3000)).to_string(),
        ];
        writeln!(w, "  {}:", q(&r.name))?;
        writeln!(w, "    image: {}", q(&options.image))?;
        writeln!(w, "    hostname: {}", q(&r.name))?;
        writeln!(w, "    command: {}", flow(&command))?;
        writeln!(w, "    networks:")?;
        writeln!(w, "      tandem:")?;
        writeln!(w, "        ipv4_address: {}", q(&r.ip.to_string()))?;
        writeln!(w, "    volumes:")?;
        writeln!(
            w,
            "      - {}",
            q(&format!("./{CLUSTER_TOML}:{cluster_in}:ro"))
        )?;
        writeln!(w, "      - {}", q("./results:/results"))?;
        writeln!(
            w,
            "      - {}",
            q(&format!("{member}-data:{DATA_IN_CONTAINER}"))
        )?;
        writeln!(w, "    secrets:")?;
        writeln!(w, "      - source: {}", q(&secret_name(&member)))?;
        writeln!(w, "        target: {}", q(&format!("{member}.key")))?;
        writeln!(w, "        mode: 0400")?;
        writeln!(w, "    healthcheck:")?;
        writeln!(w, "      test: {}", flow(&health))?;
        writeln!(w, "      interval: 5s")?;
        writeln!(w, "      timeout: 3s")?;
        writeln!(w, "      retries: 3")?;
        writeln!(w, "      start_period: 10s")?;
        writeln!(w, "    restart: unless-stopped")?;
        writeln!(w, "    stop_grace_period: 5s")?;
        writeln!(w, "    deploy:")?;
        writeln!(w, "      endpoint_mode: dnsrr")?;
        writeln!(w, "      placement:")?;
        writeln!(
            w,
            "        constraints: [{}]",
            q(&format!("node.labels.tandem.replica == {}", r.id))
        )?;
    }
    for j in 0..clients {
        let member = format!("c{j}");
        let mut command = vec![
            "client".to_string(),
            "--cluster".into(),
            cluster_in.clone(),
            "--key".into(),
            format!("/run/secrets/{member}.key"),
            "--client-index".into(),
            j.to_string(),
            "--client-count".into(),
            clients.to_string(),
            "--duration".into(),
            options.load.duration.to_string(),
            "--warmup".into(),
            options.load.warmup.to_string(),
            "--out".into(),
            format!("/results/client-{j}.txt"),
        ];
        match options.load.rate {
            Some(rate) => command.extend(["--rate".to_string(), rate.to_string()]),
            None => command.extend(["--window".to_string(), options.load.window.to_string()]),
        }
        writeln!(w, "  {}:", q(&member))?;
        writeln!(w, "    image: {}", q(&options.image))?;
        writeln!(w, "    hostname: {}", q(&member))?;
        writeln!(w, "    command: {}", flow(&command))?;
        writeln!(w, "    networks:")?;
        writeln!(w, "      tandem:")?;
        writeln!(
            w,
            "        ipv4_address: {}",
            q(&options.subnet.host(FIRST_CLIENT_HOST + j as u8).to_string())
        )?;
        writeln!(w, "    volumes:")?;
        writeln!(
            w,
            "      - {}",
            q(&format!("./{CLUSTER_TOML}:{cluster_in}:ro"))
        )?;
        writeln!(w, "      - {}", q("./results:/results"))?;
        writeln!(w, "    secrets:")?;
        writeln!(w, "      - source: {}", q(&secret_name(&member)))?;
        writeln!(w, "        target: {}", q(&format!("{member}.key")))?;
        writeln!(w, "        mode: 0400")?;
        writeln!(w, "    depends_on:")?;
        for r in &replicas {
            writeln!(w, "      {}:", q(&r.name))?;
            writeln!(w, "        condition: service_healthy")?;
        }
        writeln!(w, "    restart: \"no\"")?;
        writeln!(w, "    deploy:")?;
        writeln!(w, "      restart_policy:")?;
        writeln!(w, "        condition: none")?;
        writeln!(w, "      placement:")?;
        writeln!(
            w,
            "        constraints: [{}]",
            q(&format!("node.labels.tandem.client == {j}"))
        )?;
    }
    writeln!(w, "networks:")?;
    writeln!(w, "  tandem:")?;
    writeln!(w, "    ipam:")?;
    writeln!(w, "      config:")?;
    writeln!(w, "        - subnet: {}", q(&options.subnet.to_string()))?;
    writeln!(w, "volumes:")?;
    for r in &replicas {
        writeln!(w, "  {}: {{}}", q(&format!("r{}-data", r.id)))?;
    }
    writeln!(w, "secrets:")?;
    let members = replicas
        .iter()
        .map(|r| format!("r{}", r.id))
        .chain((0..clients).map(|j| format!("c{j}")));
    for member in members {
        writeln!(w, "  {}:", q(&secret_name(&member)))?;
        writeln!(w, "    file: {}", q(&format!("./keys/{member}.key")))?;
    }
    Ok(y)
}

/// Writes a deployment folder `out`: `compose.yaml`, `cluster.toml`, `keys/<id>.key`
/// (owner-only) for every replica and the first `clients` clients, and an empty
/// `results/`. `keys` must hold those members' key files. Returns the Compose file's
/// path.
pub fn write_deployment(
    out: &Path,
    cluster: &ClusterFile,
    keys: &[KeyFile],
    clients: usize,
    options: &ComposeOptions,
) -> Result<PathBuf> {
    let yaml = compose_yaml(cluster, clients, options)?;
    let needed = cluster
        .replicas
        .iter()
        .map(|r| format!("r{}", r.id))
        .chain((0..clients).map(|j| format!("c{j}")));
    let key_dir = out.join("keys");
    fs::create_dir_all(&key_dir).with_context(|| format!("cannot create {}", key_dir.display()))?;
    fs::create_dir_all(out.join("results"))
        .with_context(|| format!("cannot create {}/results", out.display()))?;
    for member in needed {
        let key = keys
            .iter()
            .find(|k| k.id == member)
            .ok_or_else(|| anyhow!("no key file for {member}"))?;
        key.save(&key_dir.join(format!("{member}.key")))?;
    }
    cluster.save(&out.join(CLUSTER_TOML))?;
    let path = out.join("compose.yaml");
    fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_params::ClusterParams;

    fn cluster(addresses: &[&str], clients: usize) -> (ClusterFile, Vec<KeyFile>) {
        let addresses: Vec<ReplicaAddress> = addresses.iter().map(|a| a.parse().unwrap()).collect();
        ClusterParams {
            replicas: addresses.len(),
            ..ClusterParams::default()
        }
        .generate_at_hosts(&addresses, clients)
        .unwrap()
    }

    #[test]
    fn host_names_become_services_at_fixed_addresses() {
        let (c, _) = cluster(&["r0:7100", "r1:7100", "r2:7100", "r3:7100"], 2);
        let yaml = compose_yaml(&c, 2, &ComposeOptions::default()).unwrap();
        for (i, ip) in ["10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"]
            .iter()
            .enumerate()
        {
            assert!(yaml.contains(&format!("  \"r{i}\":\n")), "{yaml}");
            assert!(yaml.contains(&format!("ipv4_address: \"{ip}\"")), "{yaml}");
            assert!(
                yaml.contains(&format!("file: \"./keys/r{i}.key\"")),
                "{yaml}"
            );
            assert!(yaml.contains(&format!("\"r{i}-data\": {{}}")), "{yaml}");
        }
        assert!(yaml.contains("ipv4_address: \"10.77.0.211\""), "{yaml}");
        assert!(yaml.contains("\"--client-count\", \"2\""), "{yaml}");
        assert!(yaml.contains("node.labels.tandem.replica == 3"), "{yaml}");
        assert!(yaml.contains("\"health\""), "{yaml}");
    }

    /// Each replica's command names as `--data-dir` the path its data volume is
    /// mounted at, so its write-ahead log is on the volume (a restarted container keeps
    /// it). Before the fix the command had no `--data-dir`: the log went to the
    /// container's own layer.
    #[test]
    fn the_replica_command_logs_to_its_data_volume() {
        let (c, _) = cluster(&["r0:7100", "r1:7100", "r2:7100", "r3:7100"], 1);
        let yaml = compose_yaml(&c, 1, &ComposeOptions::default()).unwrap();
        for i in 0..4 {
            let service = yaml
                .split(&format!("  \"r{i}\":\n"))
                .nth(1)
                .and_then(|rest| rest.split("\n  \"").next())
                .unwrap_or_else(|| panic!("service r{i}: {yaml}"));
            let volume = format!("- \"r{i}-data:");
            let mounted = service
                .lines()
                .find_map(|l| l.trim().strip_prefix(volume.as_str()))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("r{i} mounts its data volume: {service}"));
            let command = service
                .lines()
                .find_map(|l| l.trim().strip_prefix("command: "))
                .unwrap_or_else(|| panic!("r{i} has a command: {service}"));
            assert!(
                command.contains(&format!("\"--data-dir\", \"{mounted}\"")),
                "r{i}: the log goes to the volume at {mounted}: {command}"
            );
        }
    }

    #[test]
    fn ip_addresses_keep_their_address_and_must_be_in_the_network() {
        let (c, _) = cluster(
            &[
                "10.77.0.50:7000",
                "10.77.0.51:7000",
                "10.77.0.52:7000",
                "10.77.0.53:7000",
            ],
            1,
        );
        let services = replica_services(&c, Subnet24::DEFAULT).unwrap();
        assert_eq!(services[2].name, "r2");
        assert_eq!(services[2].ip, Ipv4Addr::new(10, 77, 0, 52));
        let other: Subnet24 = "192.168.5.0/24".parse().unwrap();
        let err = replica_services(&c, other).unwrap_err().to_string();
        assert!(
            err.contains("replica 0") && err.contains("192.168.5.0/24"),
            "{err}"
        );
        let err = compose_yaml(&c, 2, &ComposeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[[client]]"), "{err}");
    }

    #[test]
    fn subnets_parse_only_as_slash_24() {
        assert_eq!(
            "10.1.2.0/24".parse::<Subnet24>().unwrap().host(7),
            Ipv4Addr::new(10, 1, 2, 7)
        );
        for bad in ["10.1.2.0/16", "10.1.2.5/24", "10.1.2.0", "x/24"] {
            assert!(bad.parse::<Subnet24>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_deployment_folder_holds_private_keys_and_the_cluster() {
        let (c, keys) = cluster(&["r0:7100", "r1:7100", "r2:7100", "r3:7100"], 1);
        let dir = tempfile::tempdir().unwrap();
        let path = write_deployment(dir.path(), &c, &keys, 1, &ComposeOptions::default()).unwrap();
        assert!(path.ends_with("compose.yaml"));
        for member in ["r0", "r3", "c0"] {
            let key = dir.path().join("keys").join(format!("{member}.key"));
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&key).unwrap().permissions());
            assert_eq!(mode & 0o077, 0, "{member}.key is readable by others");
        }
        let back = ClusterFile::load(&dir.path().join(CLUSTER_TOML)).unwrap();
        assert_eq!(back.replicas[2].address.to_string(), "r2:7100");
        assert!(dir.path().join("results").is_dir());
    }
}
