//! Blocks of the HotStuff block tree: a batch, the quorum certificate of the parent
//! block, the round it was proposed in, its author and its height (the parent's
//! height + 1; deliveries are numbered by height). A block is named by its digest,
//! which binds all of these, so a block fetched from any peer can be checked against
//! the digest a QC certified.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hotstuff::qc::Qc;
use crate::request::Batch;
use crate::types::{Digest, ReplicaId, Seq, View};

/// A HotStuff round. Rounds only grow; each has one leader.
pub type Round = View;

/// A proposed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The round it was proposed in (> its parent's round).
    pub round: Round,
    /// Its height: the parent's height + 1 (genesis is 0).
    pub height: Seq,
    /// The leader of `round` that proposed it.
    pub author: ReplicaId,
    /// The QC of its parent (`qc.block` is the parent's digest).
    pub qc: Qc,
    /// The requests it orders.
    pub batch: Arc<Batch>,
}

impl Block {
    /// The genesis block: round 0, height 0, certified by [`Qc::genesis`].
    pub fn genesis() -> Arc<Block> {
        Arc::new(Block {
            round: View(0),
            height: Seq(0),
            author: ReplicaId(0),
            qc: Qc::genesis(),
            batch: Batch::null(),
        })
    }

    /// The block's digest: SHA-256 over a domain tag, its round, height, author, its
    /// parent's QC (block digest, round and its signers in order; not the signatures
    /// themselves) and its batch digest. Genesis has the fixed [`genesis_digest`].
    ///
    /// The signers are bound because leader reputation (`leaders.rs`) reads who voted
    /// from committed blocks: a block fetched from any peer must name the same voters
    /// as the proposal its quorum checked.
    pub fn digest(&self) -> Digest {
        if self.round == View(0) && self.height == Seq(0) {
            return genesis_digest();
        }
        let signers: Vec<u8> = self
            .qc
            .votes
            .iter()
            .flat_map(|v| v.signer.0.to_le_bytes())
            .collect();
        Digest::of(&[
            b"tandem-hotstuff-block-v2",
            &self.round.0.to_le_bytes(),
            &self.height.0.to_le_bytes(),
            &self.author.0.to_le_bytes(),
            &self.qc.block.0,
            &self.qc.round.0.to_le_bytes(),
            &(self.qc.votes.len() as u64).to_le_bytes(),
            &signers,
            &self.batch.digest().0,
        ])
    }

    /// The parent's digest.
    pub fn parent(&self) -> Digest {
        self.qc.block
    }
}

/// The digest of the genesis block.
pub fn genesis_digest() -> Digest {
    Digest::of(&[b"tandem-hotstuff-genesis-v1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_binds_every_field() {
        let b = Block {
            round: View(3),
            height: Seq(2),
            author: ReplicaId(3),
            qc: Qc::genesis(),
            batch: Batch::null(),
        };
        let d = b.digest();
        let mut c = b.clone();
        c.round = View(4);
        assert_ne!(c.digest(), d);
        let mut c = b.clone();
        c.height = Seq(3);
        assert_ne!(c.digest(), d);
        let mut c = b.clone();
        c.author = ReplicaId(1);
        assert_ne!(c.digest(), d);
        let mut c = b.clone();
        c.qc.round = View(1);
        assert_ne!(c.digest(), d);
        let mut c = b.clone();
        c.qc.votes.push(crate::crypto::Signed {
            body: crate::hotstuff::qc::VoteBody {
                block: genesis_digest(),
                round: View(0),
            },
            signer: ReplicaId(2),
            signature: crate::crypto::Signature([0; 64]),
        });
        assert_ne!(c.digest(), d, "the QC's signers are bound");
        assert_eq!(Block::genesis().digest(), genesis_digest());
        assert_ne!(d, genesis_digest());
    }
}
