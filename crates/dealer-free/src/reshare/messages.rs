//! Resharing's messages: their decoding, the deals a receiver holds, and the sealing context
//! of a share (the DKG's, under the resharing label).

use curve25519_dalek::scalar::Scalar;
use phr_sis::{NodeId, Threshold};

use super::{ENCRYPTED_SHARE_LEN, SHARE_LABEL};
use crate::dkg::SessionId;
use crate::dkg::complain::{Complaint, read_complaints};
use crate::dkg::deal::committed_bytes;
use crate::dkg::justify::JustificationBody;
use crate::dkg::sealed::{Ephemeral, SealContext};
use crate::identity::Signature;
use crate::vss::FeldmanCommitment;
use crate::wire::{MessageKind, Reader, WireError, peek_kind};

/// A dealer's deal for this receiver, as held.
#[derive(Debug, Clone)]
pub(super) struct HeldDeal {
    pub(super) commitment: FeldmanCommitment,
    pub(super) ephemeral: Ephemeral,
    pub(super) possession: bool,
    pub(super) digest: [u8; 32],
    pub(super) sealed: ([u8; ENCRYPTED_SHARE_LEN], Signature),
    pub(super) share: Option<Scalar>,
}

/// Round-1 message: `version ‖ kind ‖ dealer ‖ recipient ‖ commitment (32·t_new) ‖ E (32) ‖
/// encrypted share (32 + 16) ‖ signature`, the signature over the commitment digest (which
/// covers the commitment and `E`), the recipient and the ciphertext.
#[derive(Debug, Clone)]
pub(super) struct ReshareDeal {
    pub(super) recipient: NodeId,
    pub(super) commitment: FeldmanCommitment,
    pub(super) committed: Vec<u8>,
    pub(super) ephemeral: Ephemeral,
    pub(super) encrypted_share: [u8; ENCRYPTED_SHARE_LEN],
    pub(super) signature: Signature,
}

/// Round-2: `version ‖ kind ‖ sender ‖ echo ‖ complaints (as the DKG's, with evidence) ‖
/// signature`.
#[derive(Debug, Clone)]
pub(super) struct ReshareComplaints {
    pub(super) echo: [u8; 32],
    pub(super) complaints: Vec<Complaint>,
}

#[derive(Debug, Clone)]
pub(super) enum Body {
    Deal(ReshareDeal),
    Complaints(ReshareComplaints),
    Justification(JustificationBody<FeldmanCommitment>),
    Confirmation([u8; 32]),
}

pub(super) fn parse_feldman(bytes: &[u8], t: Threshold) -> Result<FeldmanCommitment, WireError> {
    FeldmanCommitment::from_bytes(bytes, t).map_err(|e| WireError::InvalidField {
        field: "commitment",
        reason: e.to_string(),
    })
}

pub(super) fn decode(bytes: &[u8], t: Threshold) -> Result<(NodeId, Body, Signature), WireError> {
    let kind = peek_kind(bytes)?;
    let mut r = Reader::new(bytes, kind)?;
    let sender = r.node("sender")?;
    let commitment_len = 32 * usize::from(t.t());
    let body = match kind {
        MessageKind::ReshareDeal => {
            let recipient = r.node("recipient")?;
            let cbytes = r.slice("commitment", commitment_len)?;
            let commitment = parse_feldman(cbytes, t)?;
            let ephemeral = Ephemeral::read(&mut r)?;
            Body::Deal(ReshareDeal {
                recipient,
                commitment,
                committed: committed_bytes(cbytes, &ephemeral),
                ephemeral,
                encrypted_share: r.array("encrypted share")?,
                signature: Signature::placeholder(),
            })
        }
        MessageKind::ReshareComplaint => {
            let echo = r.array::<32>("echo")?;
            let complaints = read_complaints(&mut r, sender, ENCRYPTED_SHARE_LEN)?;
            Body::Complaints(ReshareComplaints { echo, complaints })
        }
        MessageKind::ReshareJustification => Body::Justification(JustificationBody::read(
            &mut r,
            commitment_len,
            |b| parse_feldman(b, t),
            ENCRYPTED_SHARE_LEN,
        )?),
        MessageKind::ReshareConfirmation => Body::Confirmation(r.array::<32>("transcript")?),
        other => {
            return Err(WireError::UnexpectedKind {
                expected: MessageKind::ReshareDeal,
                got: other,
            });
        }
    };
    let signature = Signature::read(&mut r)?;
    r.finish()?;
    let body = match body {
        Body::Deal(mut d) => {
            d.signature = signature;
            Body::Deal(d)
        }
        other => other,
    };
    Ok((sender, body, signature))
}

pub(super) fn seal_context<'a>(
    session: &'a SessionId,
    dealer: NodeId,
    recipient: NodeId,
    digest: &'a [u8; 32],
) -> SealContext<'a> {
    SealContext {
        session: session.as_bytes(),
        label: SHARE_LABEL,
        dealer,
        recipient,
        aad: digest,
    }
}

pub(super) fn decode_scalar(plain: &[u8]) -> Option<Scalar> {
    let b: [u8; 32] = plain.try_into().ok()?;
    Option::from(Scalar::from_canonical_bytes(b))
}
