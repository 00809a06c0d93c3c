//! The launcher's end of the control channel: a QUIC client with the cluster file's
//! `[control]` key that installs fault rules on every replica, asks replicas for
//! their status (to resolve `primary` when a fault fires) and, at the end of a run,
//! reads their exactly-once tables page by page (the acknowledged-loss check). Its own transport is never
//! faulted, and the rules it installs never name it, so control frames get through
//! partitions and isolation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tandem_consensus::client::Destination;
use tandem_consensus::{ProtocolKind, ReplicaId, View};
use tandem_network::{
    FaultRules, Identity, Inbound, Membership, NodeId, QuicConfig, QuicTransport, Transport,
};
use tokio::time::Instant;

use crate::acknowledged::ExecutedWindow;
use crate::frames::{
    self, ClientFrame, ControlCommand, ControlReply, ControlRequest, ControlStatus, ReplicaFrame,
};
use crate::load::client_bind_address;

/// The launcher's connection to the replicas.
pub struct Launcher {
    transport: QuicTransport,
    inbound: Inbound,
    replicas: Vec<NodeId>,
    protocol: ProtocolKind,
    max_frame: usize,
    next_nonce: u64,
}

impl Launcher {
    /// Connects with `identity` (the launcher's key) to the replicas of `membership`.
    pub fn connect(
        identity: &Identity,
        membership: Arc<Membership>,
        protocol: ProtocolKind,
        max_frame: usize,
    ) -> Result<Launcher> {
        let bind = client_bind_address(membership.iter().filter_map(|m| m.addr));
        let replicas = membership.replica_ids();
        let quic = QuicConfig {
            max_frame_size: max_frame,
            ..QuicConfig::default()
        };
        let (transport, inbound) = QuicTransport::bind(identity, membership, bind, quic)
            .context("cannot start the launcher's transport")?;
        Ok(Launcher {
            transport,
            inbound,
            replicas,
            protocol,
            max_frame,
            next_nonce: 1,
        })
    }

    fn send_all(&mut self, command: &ControlCommand) -> Result<u64> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let frame = frames::encode(&ClientFrame::Control(Box::new(ControlRequest {
            nonce,
            command: command.clone(),
        })))?;
        self.transport.broadcast(&self.replicas, frame);
        Ok(nonce)
    }

    /// Sends `rules` to every replica (each installs them with `FaultHandle::replace`;
    /// re-sending unchanged rules changes nothing, so the runner re-sends them
    /// periodically for replicas that restarted). Answers are not awaited.
    pub fn install(&mut self, rules: &FaultRules) -> Result<()> {
        self.drain();
        self.send_all(&ControlCommand::SetFaults(rules.clone()))?;
        Ok(())
    }

    /// Asks every replica for its status and collects the answers that arrive within
    /// `wait` (replicas that are down, paused or cut off do not answer).
    pub async fn status(&mut self, wait: Duration) -> Result<Vec<ControlStatus>> {
        self.drain();
        let nonce = self.send_all(&ControlCommand::Status)?;
        let deadline = Instant::now() + wait;
        let mut out: Vec<ControlStatus> = Vec::new();
        while out.len() < self.replicas.len() {
            let Ok(Some((from, bytes))) =
                tokio::time::timeout_at(deadline, self.inbound.recv()).await
            else {
                break;
            };
            if let Some(reply) = self.decode(from, &bytes)
                && reply.nonce == nonce
                && !out.iter().any(|s| s.replica == reply.status.replica)
            {
                out.push(reply.status);
            }
        }
        Ok(out)
    }

    /// Sends `command` to replica `replica` alone and waits up to `wait` for its
    /// answer (`None`: none came).
    pub async fn ask(
        &mut self,
        replica: u32,
        command: ControlCommand,
        wait: Duration,
    ) -> Result<Option<ControlReply>> {
        self.drain();
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        let frame = frames::encode(&ClientFrame::Control(Box::new(ControlRequest {
            nonce,
            command,
        })))?;
        self.transport.send(NodeId::Replica(replica), frame);
        let deadline = Instant::now() + wait;
        loop {
            let Ok(Some((from, bytes))) =
                tokio::time::timeout_at(deadline, self.inbound.recv()).await
            else {
                return Ok(None);
            };
            if let Some(reply) = self.decode(from, &bytes)
                && reply.nonce == nonce
                && reply.status.replica == replica
            {
                return Ok(Some(reply));
            }
        }
    }

    /// Replica `replica`'s whole exactly-once table, page by page (each page waited
    /// for up to `wait`), with its status after the last page; `None` if a page did
    /// not come. Rows of clients not in `keep` are dropped as they arrive, and a
    /// client's numbers are capped at `max_per_client` (a well-formed table holds at
    /// most the client window of them), so what a replica sends cannot grow the
    /// launcher's memory beyond the clients asked about.
    pub async fn executed_table(
        &mut self,
        replica: u32,
        keep: &dyn Fn(u32) -> bool,
        max_per_client: usize,
        wait: Duration,
    ) -> Result<Option<(ControlStatus, BTreeMap<u32, ExecutedWindow>)>> {
        let mut table: BTreeMap<u32, ExecutedWindow> = BTreeMap::new();
        let mut cursor = (0u32, 0u64);
        loop {
            let command = ControlCommand::Executed {
                client: cursor.0,
                after: cursor.1,
            };
            let Some(reply) = self.ask(replica, command, wait).await? else {
                return Ok(None);
            };
            let Some(page) = reply.executed else {
                return Ok(None);
            };
            for (client, window) in page.clients {
                if !keep(client) {
                    continue;
                }
                let row = table.entry(client).or_default();
                row.low = row.low.max(window.low);
                row.above.extend(window.above);
                row.above.sort_unstable();
                row.above.dedup();
                let low = row.low;
                row.above.retain(|&n| n > low);
                row.above.truncate(max_per_client);
            }
            match page.next {
                // Pages only move forward; a cursor that does not is refused.
                Some(next) if next > cursor => cursor = next,
                Some(_) => return Ok(None),
                None => return Ok(Some((reply.status, table))),
            }
        }
    }

    /// The primary (leader) now, as the protocol's clients would find it from the
    /// views replicas report: the primary of the (f+1)-th highest view for PBFT.
    /// `None` when no replica answered.
    pub async fn primary(&mut self, wait: Duration) -> Result<Option<u32>> {
        let statuses = self.status(wait).await?;
        if statuses.is_empty() {
            return Ok(None);
        }
        let mut routing = self.protocol.client_routing(self.replicas.len());
        for s in &statuses {
            routing.on_reply(ReplicaId(s.replica), View(s.view));
        }
        Ok(match routing.destination() {
            Destination::One(r) => Some(r.0),
            Destination::Several(rs) => rs.first().map(|r| r.0),
            Destination::All => Some(0),
        })
    }

    /// A reply from a replica, if `bytes` is one.
    fn decode(&self, from: NodeId, bytes: &[u8]) -> Option<ControlReply> {
        let NodeId::Replica(r) = from else {
            return None;
        };
        match frames::decode_replica_frame(bytes, self.max_frame) {
            Ok(ReplicaFrame::Control(reply)) if reply.status.replica == r => Some(*reply),
            _ => None,
        }
    }

    /// Drops answers nobody waits for (to installs).
    fn drain(&mut self) {
        while self.inbound.try_recv().is_ok() {}
    }

    /// Closes the connections.
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }
}
