//! Resharing's rounds 1 to 3 on the receiving and dealing side: open the deals, complain
//! (with evidence), and justify (redeliver, relay signed deals as evidence) — the DKG's rules
//! ([`crate::dkg::justify`]) with Feldman commitments.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::scalar::Scalar;
use phr_sis::NodeId;
use rand::CryptoRng;

use super::messages::{Body, HeldDeal, decode_scalar, seal_context};
use super::{ReshareOutgoing, ReshareRound, ReshareSession, SHARE_LABEL};
use crate::dkg::complain::{Complaint, ComplaintReason, echo_hash, write_complaints};
use crate::dkg::deal::commitment_digest;
use crate::dkg::justify::{JustificationBody, Redelivery, SignedDeal, missing_somewhere};
use crate::dkg::sealed::ShareEvidence;
use crate::identity::Signature;
use crate::vss::FeldmanCommitment;
use crate::wire::{MessageKind, Writer};

impl ReshareSession {
    pub(super) fn open_deals<R: CryptoRng + ?Sized>(
        &mut self,
        msgs: BTreeMap<NodeId, Body>,
        rng: &mut R,
    ) {
        let session = self.params.session;
        let me = self.keys.id();
        let mut checks = Vec::new();
        for (from, body) in msgs {
            let Body::Deal(d) = body else { continue };
            let digest = commitment_digest(&session, from, &d.committed);
            let expected_c0 = self.params.old.verification_shares.get(&from).copied();
            let ctx = seal_context(&session, from, me, &digest);
            // A deal whose ephemeral key is not provably the dealer's is never opened, nor
            // complained about with evidence; every receiver disqualifies its dealer.
            let possession = d.ephemeral.verify(session.as_bytes(), SHARE_LABEL, from);
            let share = possession
                .then(|| ctx.open(&self.keys, &d.ephemeral.point, &d.encrypted_share))
                .flatten()
                .and_then(|p| decode_scalar(&p))
                .filter(|_| Some(d.commitment.public_key()) == expected_c0);
            if let Some(s) = share {
                checks.push((from, s, d.commitment.clone()));
            } else {
                self.reject(from, "encrypted share does not open");
            }
            self.deals.insert(
                from,
                HeldDeal {
                    commitment: d.commitment,
                    ephemeral: d.ephemeral,
                    possession,
                    digest,
                    sealed: (d.encrypted_share, d.signature),
                    share: None,
                },
            );
        }
        let batch: Vec<(NodeId, Scalar, &FeldmanCommitment)> =
            checks.iter().map(|(_, s, c)| (me, *s, c)).collect();
        let failing: Vec<usize> = match crate::vss::verify_batch_vartime(&batch, rng) {
            Ok(()) => Vec::new(),
            Err(crate::vss::VssError::BatchVerificationFailed { failing }) => failing,
            Err(_) => (0..batch.len()).collect(),
        };
        for (i, (from, s, _)) in checks.into_iter().enumerate() {
            if !failing.contains(&i)
                && let Some(h) = self.deals.get_mut(&from)
            {
                h.share = Some(s);
            }
        }
    }

    pub(super) fn complain<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Vec<ReshareOutgoing> {
        let me = self.keys.id();
        let session = self.params.session;
        let mut complaints = Vec::new();
        for d in self.params.dealers.keys() {
            match self.deals.get(d) {
                None => complaints.push(Complaint {
                    accused: *d,
                    reason: ComplaintReason::MissingDeal,
                    evidence: None,
                }),
                Some(h) if h.share.is_none() && h.possession => {
                    let ctx = seal_context(&session, *d, me, &h.digest);
                    let evidence = ShareEvidence::new(
                        &self.keys,
                        &ctx,
                        &h.ephemeral.point,
                        &h.sealed.0,
                        h.sealed.1,
                        rng,
                    );
                    complaints.push(Complaint {
                        accused: *d,
                        reason: ComplaintReason::InvalidShare,
                        evidence: Some(evidence),
                    });
                }
                Some(_) => {}
            }
        }
        let digests: BTreeMap<NodeId, [u8; 32]> =
            self.deals.iter().map(|(d, h)| (*d, h.digest)).collect();
        let mut w = Writer::new(MessageKind::ReshareComplaint);
        w.node(me);
        w.bytes(&echo_hash(&self.params.session, &digests));
        write_complaints(&mut w, &complaints);
        self.broadcast(ReshareRound::Complain, w, rng)
    }

    pub(super) fn justify<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Vec<ReshareOutgoing> {
        let me = self.keys.id();
        let msgs = self.take_verified(rng);
        let session = self.params.session;
        let digests: BTreeMap<NodeId, [u8; 32]> =
            self.deals.iter().map(|(d, h)| (*d, h.digest)).collect();
        let mut mismatch = false;
        for (from, body) in &msgs {
            let Body::Complaints(c) = body else { continue };
            let missing: BTreeSet<NodeId> = c
                .complaints
                .iter()
                .filter(|x| x.reason == ComplaintReason::MissingDeal)
                .map(|x| x.accused)
                .collect();
            for x in &c.complaints {
                if self.params.dealers.contains_key(&x.accused) {
                    self.complaints
                        .entry(x.accused)
                        .or_default()
                        .insert(*from, x.clone());
                }
            }
            let claimed: Vec<NodeId> = self
                .params
                .dealers
                .keys()
                .filter(|d| !missing.contains(d))
                .copied()
                .collect();
            if self.params.receivers.contains_key(&me)
                && claimed.iter().all(|d| digests.contains_key(d))
            {
                let expected = echo_hash(
                    &session,
                    claimed.iter().filter_map(|d| digests.get_key_value(d)),
                );
                mismatch |= expected != c.echo;
            }
        }
        let missing = missing_somewhere(&self.complaints, |c| c.reason);
        let redelivery = self.dealt.as_ref().and_then(|dealt| {
            let deals: Vec<(NodeId, Vec<u8>, Signature)> = self
                .complaints
                .get(&me)?
                .iter()
                .filter(|(_, c)| c.reason == ComplaintReason::MissingDeal)
                .filter_map(|(a, _)| dealt.sent.get(a).map(|(ct, sig)| (*a, ct.to_vec(), *sig)))
                .collect();
            (!deals.is_empty()).then(|| Redelivery {
                commitment: dealt.dealer.commitment().clone(),
                commitment_bytes: dealt.commitment_bytes.clone(),
                ephemeral: dealt.ephemeral,
                deals,
            })
        });
        let evidence: Vec<SignedDeal> = self
            .deals
            .iter()
            .filter(|(d, _)| **d != me && (mismatch || missing.contains(d)))
            .map(|(d, h)| SignedDeal {
                dealer: *d,
                digest: h.digest,
                recipient: me,
                ciphertext: h.sealed.0.to_vec(),
                signature: h.sealed.1,
            })
            .collect();
        if redelivery.is_none() && evidence.is_empty() {
            return Vec::new();
        }
        let mut w = Writer::new(MessageKind::ReshareJustification);
        w.node(me);
        JustificationBody {
            redelivery,
            evidence,
        }
        .write(&mut w);
        self.broadcast(ReshareRound::Justify, w, rng)
    }
}
