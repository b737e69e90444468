//! The confirmation that closes a checked mask dealing: before a server uses its pool, every
//! server of the dealing must have signed the same order and the same dealers summed.
//!
//! Without it the relaying client could make servers sum different dealers (by relaying
//! different subsets of the checks, or a malicious checker's two different signed checks),
//! or deal to different servers under different orders. Masks summed from different dealers
//! no longer form one sharing, and a client colluding with `t − 1` servers could then solve
//! the answers for the secrets they mask. Each server therefore signs a [`PoolConfirmation`]
//! — the session and SHA-256 over the order's encoding, the dealers it summed and every
//! commitment it holds (fresh in every run, so an earlier run's confirmation under a reused
//! session id never matches) — when it judges, and takes its pool into use only once the client relays a confirmation from
//! every server of the order, each signed by its server and equal to its own
//! ([`check_confirmations`]).

use std::collections::{BTreeMap, BTreeSet};

use phr_sis::NodeId;
use rand::CryptoRng;
use sha2::{Digest, Sha256};

use super::check::MaskCommitment;
use super::session::MaskOrder;
use crate::identity::{NodeKeys, NodePublicKeys, SIGNATURE_LEN, Signature};
use crate::mpc::SearchError;
use crate::mpc::error::verify_signatures;
use crate::mpc::messages::SessionId;
use crate::wire::{MessageKind, Reader, WireError, Writer};

/// The domain a server signs its confirmation under.
pub const CONFIRM_DOMAIN: &[u8] = b"dealer-free-sis/mpc/mask-pool-confirmation/v1";

/// One server's word on a judged dealing: its session, the server, and the digest of the
/// order and the dealers it summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfirmation {
    /// The dealing session.
    pub session: SessionId,
    /// The server that judged.
    pub node: NodeId,
    /// SHA-256 over the order's encoding and the dealers summed, ascending.
    pub digest: [u8; 32],
}

/// A [`PoolConfirmation`] signed by its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPoolConfirmation {
    /// The confirmation.
    pub confirmation: PoolConfirmation,
    /// The server's signature under [`CONFIRM_DOMAIN`].
    pub signature: Signature,
}

/// The digest a server confirms: SHA-256 over a label, the order's encoding, the dealers it
/// summed (ascending) and the encoding of every dealer's commitment it holds (ascending by
/// dealer). The commitments carry fresh salts and points in every run, so a confirmation of
/// an earlier run under the same session id never matches a later one.
#[must_use]
pub fn digest(order: &MaskOrder, used: &[NodeId], commitments: &[MaskCommitment]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CONFIRM_DOMAIN);
    let bytes = order.to_bytes();
    h.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
    h.update(&bytes);
    let mut used = used.to_vec();
    used.sort_unstable();
    h.update([u8::try_from(used.len()).unwrap_or(u8::MAX)]);
    for d in used {
        h.update([d.get()]);
    }
    let mut commitments: Vec<&MaskCommitment> = commitments.iter().collect();
    commitments.sort_unstable_by_key(|c| c.dealer());
    h.update([u8::try_from(commitments.len()).unwrap_or(u8::MAX)]);
    for c in commitments {
        let bytes = c.to_bytes();
        h.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(&bytes);
    }
    h.finalize().into()
}

impl PoolConfirmation {
    /// `version ‖ kind ‖ session (32) ‖ node ‖ digest (32)`.
    fn to_bytes(self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MessageKind::PoolConfirmation, 32 + 1 + 32);
        w.bytes(&self.session);
        w.node(self.node);
        w.bytes(&self.digest);
        w.finish()
    }

    fn signed_message(self) -> Vec<u8> {
        let mut v = CONFIRM_DOMAIN.to_vec();
        v.extend_from_slice(&self.to_bytes());
        v
    }
}

impl SignedPoolConfirmation {
    /// Encoded length.
    pub const ENCODED_LEN: usize = 2 + 32 + 1 + 32 + SIGNATURE_LEN;

    /// The confirmation's encoding, then the signature (64 bytes).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.confirmation.to_bytes();
        v.extend_from_slice(&self.signature.to_bytes());
        v
    }

    /// Decodes [`SignedPoolConfirmation::to_bytes`] (the signature is not verified here).
    /// Never panics.
    ///
    /// # Errors
    /// [`WireError`] for a wrong header or length, node id 0 or a malformed signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedPoolConfirmation, WireError> {
        let invalid = |field: &'static str, reason: &str| WireError::InvalidField {
            field,
            reason: reason.to_owned(),
        };
        let mut r = Reader::new(bytes, MessageKind::PoolConfirmation)?;
        let session = r.array::<32>("session")?;
        let node = r.node("node")?;
        let digest = r.array::<32>("digest")?;
        let sig = r.array::<SIGNATURE_LEN>("signature")?;
        r.finish()?;
        let signature =
            Signature::from_bytes(&sig).ok_or_else(|| invalid("signature", "malformed"))?;
        Ok(SignedPoolConfirmation {
            confirmation: PoolConfirmation {
                session,
                node,
                digest,
            },
            signature,
        })
    }
}

/// This server's signed confirmation of `order` judged to `digest` ([`digest`]).
pub fn confirm<R: CryptoRng + ?Sized>(
    order: &MaskOrder,
    digest: [u8; 32],
    keys: &NodeKeys,
    rng: &mut R,
) -> SignedPoolConfirmation {
    let confirmation = PoolConfirmation {
        session: order.session,
        node: keys.id(),
        digest,
    };
    SignedPoolConfirmation {
        signature: keys.sign(&confirmation.signed_message(), rng),
        confirmation,
    }
}

/// Checks that every server of `order` confirmed the same `want` digest as this server
/// ([`digest`]: the order, the dealers summed and every commitment held): one confirmation
/// per server, each of this session, signed by its server. Anything else (a server missing, repeated or not of the order, a
/// forged signature, another digest) refuses the pool's use.
///
/// # Errors
/// [`SearchError::TooMany`] for more confirmations than servers (before any signature is
/// checked); [`SearchError::Misaddressed`] naming the server that is missing, repeated, not
/// of the order or of another digest; [`SearchError::Forged`] for a bad signature.
pub fn check_confirmations<R: CryptoRng + ?Sized>(
    order: &MaskOrder,
    want: [u8; 32],
    me: NodeId,
    confirmations: &[SignedPoolConfirmation],
    roster: &BTreeMap<NodeId, NodePublicKeys>,
    rng: &mut R,
) -> Result<(), SearchError> {
    let servers = &order.servers;
    if confirmations.len() > servers.len() {
        return Err(SearchError::TooMany {
            what: "mask pool confirmations",
            got: confirmations.len(),
            max: servers.len(),
        });
    }
    let bad = |node: NodeId, reason: &str| SearchError::Misaddressed {
        from: Some(node),
        what: "mask pool confirmation",
        reason: reason.to_owned(),
    };
    let mut seen = BTreeSet::new();
    let mut signed = Vec::with_capacity(confirmations.len());
    for c in confirmations {
        let x = c.confirmation;
        if !servers.contains(&x.node) {
            return Err(bad(x.node, "not a server of the dealing"));
        }
        if !seen.insert(x.node) {
            return Err(bad(x.node, "two confirmations"));
        }
        if x.session != order.session || x.digest != want {
            return Err(bad(
                x.node,
                "another order or other dealers summed than this server's",
            ));
        }
        signed.push((x.node, x.signed_message(), &c.signature));
    }
    if let Some(missing) = servers.iter().find(|s| !seen.contains(s)) {
        return Err(bad(*missing, "no confirmation from this server"));
    }
    verify_signatures(
        &signed,
        roster,
        "mask pool confirmation",
        "mask pool confirmation",
        me,
        rng,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // test code
mod tests {
    use super::*;
    use crate::mpc::masks::MaskKind;
    use phr_sis::ImageId;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn order(ids: &[u64]) -> MaskOrder {
        MaskOrder {
            session: [5; 32],
            servers: NodeId::first(4).collect(),
            count: u32::try_from(ids.len()).unwrap(),
            kind: MaskKind::Random,
            ids: ids.iter().copied().map(ImageId).collect(),
        }
    }

    #[test]
    fn every_server_must_confirm_the_same_order_and_dealers() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let keys: Vec<NodeKeys> = NodeId::first(4)
            .map(|id| NodeKeys::generate(id, &mut rng))
            .collect();
        let roster: BTreeMap<NodeId, NodePublicKeys> =
            keys.iter().map(|k| (k.id(), k.public())).collect();
        let used: Vec<NodeId> = NodeId::first(3).collect();
        let o = order(&[1, 2]);
        let d = digest(&o, &used, &[]);
        let all: Vec<SignedPoolConfirmation> =
            keys.iter().map(|k| confirm(&o, d, k, &mut rng)).collect();
        let me = keys[0].id();
        let check = |c: &[SignedPoolConfirmation], o: &MaskOrder, used: &[NodeId]| {
            let want = digest(o, used, &[]);
            check_confirmations(o, want, me, c, &roster, &mut ChaCha20Rng::seed_from_u64(2))
        };
        check(&all, &o, &used).unwrap();
        let bytes = all[1].to_bytes();
        assert_eq!(SignedPoolConfirmation::from_bytes(&bytes).unwrap(), all[1]);
        assert!(SignedPoolConfirmation::from_bytes(&bytes[1..]).is_err());
        // One server missing, or repeated.
        assert!(check(&all[..3], &o, &used).is_err());
        let twice = [
            all[0].clone(),
            all[1].clone(),
            all[2].clone(),
            all[2].clone(),
        ];
        assert!(check(&twice, &o, &used).is_err());
        // A server that summed other dealers, or was dealt another order (other images).
        let mut split = all.clone();
        split[3] = confirm(&o, digest(&o, &used[..2], &[]), &keys[3], &mut rng);
        assert!(check(&split, &o, &used).is_err());
        let mut other = all.clone();
        let o2 = order(&[1, 3]);
        other[2] = confirm(&o2, digest(&o2, &used, &[]), &keys[2], &mut rng);
        // A confirmation of an earlier run under the same session (other commitments).
        let (earlier, _) = crate::mpc::masks::deal_checked(
            o.session,
            MaskKind::Random,
            keys[0].id(),
            &o.servers,
            2,
            2,
            &mut rng,
        )
        .unwrap();
        assert_ne!(digest(&o, &used, std::slice::from_ref(&earlier)), d);
        let mut replayed = all.clone();
        replayed[1] = confirm(&o, digest(&o, &used, &[earlier]), &keys[1], &mut rng);
        assert!(check(&replayed, &o, &used).is_err());
        assert!(check(&other, &o, &used).is_err());
        // A confirmation claimed for a server by another's key.
        let mut forged = all.clone();
        forged[1].confirmation.node = keys[1].id();
        forged[1].signature = all[3].signature;
        assert!(matches!(
            check(&forged, &o, &used),
            Err(SearchError::Forged { .. })
        ));
        // More confirmations than servers are refused before any is checked.
        let many = vec![all[0].clone(); 5];
        assert!(matches!(
            check(&many, &o, &used),
            Err(SearchError::TooMany { .. })
        ));
    }
}
