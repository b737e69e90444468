//! Resharing's decision after round 3: the qualified dealers, this receiver's new share, every
//! receiver's verification share, the group-key check and the round-4 confirmation.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use phr_sis::NodeId;
use rand::CryptoRng;
use sha2::{Digest, Sha512};

use super::messages::{Body, decode_scalar, seal_context};
use super::{
    QualifiedDeal, ReshareError, ReshareOutgoing, ReshareOutput, ReshareRound, ReshareSession,
    SHARE_LABEL, TRANSCRIPT_DOMAIN,
};
use crate::dkg::deal::{commitment_digest, committed_bytes};
use crate::dkg::justify::{DealerFacts, JustificationBody, rule_on_complaints};
use crate::dkg::sealed::{Ephemeral, Verdict};
use crate::dkg::{Disqualification, KeyShare};
use crate::vss::{FeldmanCommitment, lagrange_at_zero, verify_share};
use crate::wire::{MessageKind, Writer};

impl ReshareSession {
    pub(super) fn decide<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<ReshareOutgoing>, ReshareError> {
        let me = self.keys.id();
        let session = self.params.session;
        let msgs = self.take_verified(rng);
        self.dealt = None;
        if !self.params.receivers.contains_key(&me) {
            return Ok(Vec::new());
        }
        let justifications: BTreeMap<NodeId, JustificationBody<FeldmanCommitment>> = msgs
            .into_iter()
            .filter_map(|(f, b)| match b {
                Body::Justification(j) => Some((f, j)),
                _ => None,
            })
            .collect();
        let mut digests: BTreeMap<NodeId, BTreeSet<[u8; 32]>> = self
            .deals
            .iter()
            .map(|(d, h)| (*d, BTreeSet::from([h.digest])))
            .collect();
        let mut adopted: BTreeMap<NodeId, (FeldmanCommitment, Ephemeral, bool, [u8; 32])> =
            BTreeMap::new();
        for (from, j) in &justifications {
            if let Some(r) = &j.redelivery
                && self.params.dealers.contains_key(from)
            {
                let digest = commitment_digest(
                    &session,
                    *from,
                    &committed_bytes(&r.commitment_bytes, &r.ephemeral),
                );
                digests.entry(*from).or_default().insert(digest);
                if !self.deals.contains_key(from) {
                    let possession = r.ephemeral.verify(session.as_bytes(), SHARE_LABEL, *from);
                    adopted.insert(
                        *from,
                        (r.commitment.clone(), r.ephemeral, possession, digest),
                    );
                }
            }
            for e in &j.evidence {
                if digests
                    .get(&e.dealer)
                    .is_some_and(|s| s.contains(&e.digest))
                {
                    continue;
                }
                if self
                    .params
                    .dealers
                    .get(&e.dealer)
                    .is_some_and(|k| e.verify(session.as_bytes(), k))
                {
                    digests.entry(e.dealer).or_default().insert(e.digest);
                }
            }
        }
        let t_old = usize::from(self.params.old.threshold);
        let mut disqualified = BTreeMap::new();
        let mut qualified: BTreeMap<NodeId, QualifiedDeal> = BTreeMap::new();
        let mut withheld = None;
        let mut void = Vec::new();
        for dealer in self.params.dealers.keys().copied() {
            let known = self
                .deals
                .get(&dealer)
                .map(|h| (h.commitment.clone(), h.ephemeral, h.possession, h.digest))
                .or_else(|| adopted.get(&dealer).cloned());
            let Some((commitment, ephemeral, possession, digest)) = known else {
                disqualified.insert(dealer, Disqualification::NoCommitment);
                continue;
            };
            let ephemeral = ephemeral.point;
            if digests.get(&dealer).is_some_and(|s| s.len() > 1) {
                disqualified.insert(dealer, Disqualification::Equivocation);
                continue;
            }
            if !possession {
                disqualified.insert(dealer, Disqualification::BadEphemeralKey);
                continue;
            }
            if Some(commitment.public_key())
                != self.params.old.verification_shares.get(&dealer).copied()
            {
                disqualified.insert(dealer, Disqualification::NoCommitment);
                continue;
            }
            let Some(dealer_keys) = self.params.dealers.get(&dealer).copied() else {
                continue;
            };
            let facts = DealerFacts {
                session: &session,
                dealer,
                dealer_key: &dealer_keys.signing,
                digest: &digest,
                redelivered: justifications
                    .get(&dealer)
                    .and_then(|j| j.redelivery.as_ref())
                    .map(|r| r.deals.as_slice()),
                me,
                bound: usize::from(self.params.new_threshold.t()),
            };
            let receivers = &self.params.receivers;
            let ruling = rule_on_complaints(
                &facts,
                self.complaints.get(&dealer).into_iter().flatten(),
                |accuser, c| {
                    let accuser_keys = receivers.get(&accuser)?;
                    let ctx = seal_context(&session, dealer, accuser, &digest);
                    Some(c.evidence.as_ref().map_or(Verdict::Void, |e| {
                        e.judge(
                            &ctx,
                            &dealer_keys.signing,
                            &ephemeral,
                            &accuser_keys.encryption,
                            |plain| {
                                decode_scalar(plain)
                                    .is_some_and(|s| verify_share(accuser, &s, &commitment).is_ok())
                            },
                        )
                    }))
                },
            );
            void.extend(ruling.void.into_iter().map(|(accuser, _)| accuser));
            if let Some(v) = ruling.verdict {
                disqualified.insert(dealer, v);
                continue;
            }
            let mine = ruling.redelivered_for_me;
            let own = self.deals.get(&dealer).and_then(|h| h.share);
            let redelivered_share = mine
                .and_then(|ct| {
                    seal_context(&session, dealer, me, &digest).open(&self.keys, &ephemeral, &ct)
                })
                .and_then(|p| decode_scalar(&p))
                .filter(|s| verify_share(me, s, &commitment).is_ok());
            match own.or(redelivered_share) {
                Some(s) => {
                    qualified.insert(dealer, (commitment, digest, s));
                }
                None => withheld = withheld.or(Some(dealer)),
            }
        }
        for accuser in void {
            self.reject(accuser, "its complaint about a share does not hold");
        }
        if let Some(dealer) = withheld {
            self.round = ReshareRound::Done;
            return Err(ReshareError::ShareWithheld { dealer });
        }
        if qualified.len() < t_old {
            self.round = ReshareRound::Done;
            return Err(ReshareError::TooFewDealers {
                needed: self.params.old.threshold,
                qualified: qualified.keys().copied().collect(),
                disqualified,
            });
        }
        let used: Vec<(NodeId, QualifiedDeal)> = qualified.into_iter().take(t_old).collect();
        let ids: Vec<NodeId> = used.iter().map(|(d, _)| *d).collect();
        let lambdas = lagrange_at_zero(&ids);
        let mut x = Scalar::ZERO;
        for (l, (_, (_, _, s))) in lambdas.iter().zip(&used) {
            x += l * s;
        }
        // Y'_k = Σ λ_i·E_i(k): the λ-weighted sum of the commitments, evaluated at k.
        let tn = usize::from(self.params.new_threshold.t());
        let combined: Vec<RistrettoPoint> = (0..tn)
            .map(|k| {
                let pts: Vec<RistrettoPoint> = used
                    .iter()
                    .filter_map(|(_, (c, _, _))| c.points().get(k).copied())
                    .collect();
                RistrettoPoint::vartime_multiscalar_mul(&lambdas, &pts)
            })
            .collect();
        let verification_shares: BTreeMap<NodeId, RistrettoPoint> = self
            .params
            .receivers
            .keys()
            .map(|k| {
                let xk = Scalar::from(k.get());
                let mut acc = RistrettoPoint::default();
                for c in combined.iter().rev() {
                    acc = acc * xk + c;
                }
                (*k, acc)
            })
            .collect();
        let group_public_key = combined.first().copied().unwrap_or_default();
        // Σ λ_i·E_i0 = Σ λ_i·Y_i = X when every used dealer's constant term is its Y_i (checked
        // above); checked again here so that no code path can hand out a share of another key.
        if group_public_key != self.params.old.group_public_key {
            self.round = ReshareRound::Done;
            return Err(ReshareError::GroupKeyChanged {
                dealers: ids.iter().copied().collect(),
            });
        }
        let mut h = Sha512::new()
            .chain_update(TRANSCRIPT_DOMAIN)
            .chain_update(session.as_bytes());
        for (d, (_, digest, _)) in &used {
            h.update([d.get()]);
            h.update(digest);
        }
        self.transcript.copy_from_slice(&h.finalize()[..32]);
        self.result = Some(ReshareOutput {
            key_share: KeyShare::new(me, x),
            group_public_key,
            threshold: self.params.new_threshold,
            verification_shares,
            dealers_used: ids.into_iter().collect(),
            transcript: self.transcript,
            disqualified,
            rejected: Vec::new(),
        });
        let mut w = Writer::new(MessageKind::ReshareConfirmation);
        w.node(me);
        w.bytes(&self.transcript);
        Ok(self.broadcast(ReshareRound::Confirm, w, rng))
    }
}
