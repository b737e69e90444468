//! Distributed key generation (Gennaro–Jarecki–Krawczyk–Rabin) over ristretto255, as a
//! sans-IO state machine per node.
//!
//! `n` nodes jointly create a secret key `x` that none of them ever holds: node `j` ends with
//! a key share `x_j = F(j)` of a random polynomial `F` of degree `t − 1`, every node learns
//! the group public key `X = x·G` and every node's verification share `Y_j = x_j·G`. Any `t`
//! shares determine `x`; any `t − 1` reveal nothing about it.
//!
//! | round | module | sends | each receiver checks |
//! |---|---|---|---|
//! | 1 | [`deal`] | to each node: a signed Pedersen commitment and its share, encrypted | signature; the share against the commitment (one batched check for all dealers) |
//! | 2 | [`complain`] | broadcast: an echo hash of the commitments received, and complaints | signature; the echo against its own view |
//! | 3 | [`justify`] | broadcast, only when needed: the shares complained about, revealed; signed commitment digests as equivocation evidence | revealed shares against the commitment; two digests signed by one dealer |
//! | 4 | [`confirm`] | broadcast: the transcript hash, `Y_j` and a proof that `Y_j` matches the Pedersen commitments | same transcript; every proof (one batched check) |
//!
//! After round 3 every node computes the same qualified set `QUAL` (dealers not
//! disqualified) and its key share `x_j = Σ_{i∈QUAL} f_i(j)`. The group key is fixed at that
//! point by the Pedersen commitments (which hide it), so a rushing adversary cannot bias
//! it — the flaw of Feldman-only DKGs that GJKR fixes.
//!
//! **Extraction.** GJKR's extraction phase has every qualified dealer publish Feldman
//! commitments `a_ik·G` (another `32·t` bytes per dealer and node, plus a complaint and
//! reconstruction sub-protocol). Here each node instead publishes its own `Y_j` with a
//! proof of knowledge of `(x_j, x'_j)` such that `Y_j = x_j·G` and
//! `Σ_{i∈QUAL} C_i(j) = x_j·G + x'_j·H` (a two-base Schnorr proof, 128 bytes). By the binding
//! of the Pedersen commitments a valid proof forces `Y_j = F(j)·G`, so the `Y_j` of any `t`
//! nodes interpolate to `X`; in the random-oracle model a simulator can still fix `X` (it
//! fakes the honest nodes' `Y_j` on the line through `X` and simulates their proofs), which
//! is GJKR's secrecy argument. It costs `32 + 128` bytes per node instead of `32·t` per
//! dealer, and needs no reconstruction: a node that does not confirm simply has no
//! verification share.
//!
//! **Messages.** Every message is signed by its sender over a domain-separated encoding that
//! includes the session id ([`SessionId`], derived from a label, the threshold and every
//! participant's public keys), so messages from another session or another round are
//! rejected. Private shares are encrypted to the recipient ([`crate::identity`]), so any
//! untrusted party can relay every message. Encodings are canonical and versioned
//! ([`crate::wire`]) and frozen by golden-bytes tests.
//!
//! **Faults tolerated** (with at most `t − 1` faulty nodes and `n ≥ 2t − 1`): a bad share to
//! some nodes (the dealer must reveal it, or is disqualified), a bad commitment, silence in
//! any round, different commitments to different nodes (caught by the echo: honest nodes
//! exchange the dealer's signed digests and disqualify it), false complaints (answered by
//! the honest dealer's justification), bad justifications. Every disqualification names the
//! dealer and the reason ([`Disqualification`]). Broadcast consistency is checked at the end:
//! every node confirms the hash of what it used; a node whose transcript differs is named
//! ([`DkgError::TranscriptMismatch`]) and no node outputs a key that others do not share.
//! Without a broadcast channel, faulty nodes that send *different complaints or
//! justifications to different honest nodes* can force that abort (never a split key);
//! agreement in that case needs `t − 1` further echo rounds (Dolev–Strong), so the driver
//! reruns the session without the named nodes instead.
//!
//! The state machine never reads a clock or a socket: the driver delivers messages with
//! [`DkgSession::handle_message`] and calls [`DkgSession::end_round`] when every expected
//! message arrived or its own deadline passed; a node that sent nothing is treated as silent.
//!
//! # References
//! * R. Gennaro, S. Jarecki, H. Krawczyk, T. Rabin, "Secure Distributed Key Generation for
//!   Discrete-Log Based Cryptosystems", J. Cryptology 20(1), 2007.
//! * T. P. Pedersen, "Non-Interactive and Information-Theoretic Secure Verifiable Secret
//!   Sharing", CRYPTO 1991.
//! * D. Dolev, H. R. Strong, "Authenticated Algorithms for Byzantine Agreement", SIAM J.
//!   Computing 12(4), 1983.

pub mod complain;
pub mod confirm;
pub mod deal;
mod error;
pub mod faults;
pub(crate) mod inbox;
pub mod justify;
pub mod local;
pub mod sealed;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use phr_sis::{NodeId, Threshold};
use rand::CryptoRng;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::identity::{NodeKeys, NodePublicKeys, SIGNATURE_LEN, Signature};
use crate::vss::{PedersenCommitment, PedersenDealer, PedersenShare};
use crate::wire::{MessageKind, WireError, Writer, peek_kind};

pub use error::{Disqualification, DkgError, Rejected};
pub use faults::Misbehaviour;

const SESSION_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-session";
const MESSAGE_SIGNATURE_DOMAIN: &[u8] = b"dealer-free-sis/v1/dkg-message";

/// A DKG session's identity: a hash of the caller's label, the threshold and every
/// participant's id and public keys. Nodes that disagree on any of these compute different
/// ids, and their messages do not verify for each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// The id of a session with these parameters.
    #[must_use]
    pub fn derive(
        label: &[u8],
        threshold: Threshold,
        participants: &BTreeMap<NodeId, NodePublicKeys>,
    ) -> SessionId {
        let mut h = Sha512::new()
            .chain_update(SESSION_DOMAIN)
            .chain_update((label.len() as u64).to_be_bytes())
            .chain_update(label)
            .chain_update([threshold.t(), threshold.n()]);
        for (id, keys) in participants {
            h.update([id.get()]);
            h.update(keys.to_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&h.finalize()[..32]);
        SessionId(out)
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> SessionId {
        SessionId(bytes)
    }

    /// The 32 id bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// What every participant of a session must agree on before it starts.
#[derive(Clone, Debug)]
pub struct DkgParams {
    session: SessionId,
    threshold: Threshold,
    participants: BTreeMap<NodeId, NodePublicKeys>,
}

impl DkgParams {
    /// Parameters for `participants` (their ids and long-term public keys) with threshold
    /// `threshold.t()`; `label` names the session (use a fresh one per run).
    ///
    /// # Errors
    /// [`DkgError::InvalidParams`] if the number of participants is not `threshold.n()`, or
    /// `t < 2` (a 1-of-n key is held whole by every node).
    pub fn new(
        label: &[u8],
        threshold: Threshold,
        participants: BTreeMap<NodeId, NodePublicKeys>,
    ) -> Result<DkgParams, DkgError> {
        if participants.len() != usize::from(threshold.n()) {
            return Err(DkgError::InvalidParams(format!(
                "{} participants given for n = {}",
                participants.len(),
                threshold.n()
            )));
        }
        if threshold.t() < 2 {
            return Err(DkgError::InvalidParams(
                "t must be at least 2: with t = 1 every node would hold the whole key".into(),
            ));
        }
        Ok(DkgParams {
            session: SessionId::derive(label, threshold, &participants),
            threshold,
            participants,
        })
    }

    /// The session id.
    #[must_use]
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// `(t, n)`.
    #[must_use]
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// Every participant and its public keys.
    #[must_use]
    pub fn participants(&self) -> &BTreeMap<NodeId, NodePublicKeys> {
        &self.participants
    }

    fn keys_of(&self, id: NodeId) -> Result<&NodePublicKeys, DkgError> {
        self.participants
            .get(&id)
            .ok_or(DkgError::UnknownSender(id))
    }
}

/// The rounds of the protocol, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Round {
    /// Round 1: deal commitments and encrypted shares.
    Deal,
    /// Round 2: echo and complaints.
    Complain,
    /// Round 3: justifications and evidence.
    Justify,
    /// Round 4: transcript confirmation and verification shares.
    Confirm,
    /// The protocol has ended.
    Done,
}

impl Round {
    /// The round number, 1 to 4 (5 for [`Round::Done`]).
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            Round::Deal => 1,
            Round::Complain => 2,
            Round::Justify => 3,
            Round::Confirm => 4,
            Round::Done => 5,
        }
    }

    /// The round's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Round::Deal => "deal",
            Round::Complain => "complain",
            Round::Justify => "justify",
            Round::Confirm => "confirm",
            Round::Done => "done",
        }
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "round {} ({})", self.number(), self.name())
    }
}

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// Every other participant (a broadcast: the same bytes to each).
    All,
    /// One participant.
    Node(NodeId),
}

/// A message for the driver to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The round it belongs to.
    pub round: Round,
    /// The sender.
    pub from: NodeId,
    /// The recipient(s).
    pub to: Recipient,
    /// The encoded, signed message.
    pub bytes: Vec<u8>,
}

/// A node's share `x_j` of the group secret. Zeroized on drop; `Debug` is redacted;
/// equality is constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyShare {
    #[zeroize(skip)]
    id: NodeId,
    secret: Scalar,
}

impl KeyShare {
    /// A share from its parts.
    #[must_use]
    pub fn new(id: NodeId, secret: Scalar) -> KeyShare {
        KeyShare { id, secret }
    }

    /// The node holding it.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The secret scalar `x_j`.
    ///
    /// # Security
    /// Keep it secret; it is one of the `t` pieces of the group key.
    #[must_use]
    pub fn secret(&self) -> &Scalar {
        &self.secret
    }

    /// The key share carried by a Pedersen VSS share (its value `s_j`; the blinding part is
    /// not part of the key).
    #[must_use]
    pub fn from_pedersen_share(share: &PedersenShare) -> KeyShare {
        KeyShare::new(share.id(), share.value())
    }

    /// The public verification share `Y_j = x_j·G`.
    #[must_use]
    pub fn verification_share(&self) -> crate::oprf::PublicKey {
        crate::oprf::PublicKey::from_secret_scalar(&self.secret)
    }

    /// The 32-byte scalar (for storage encrypted at rest).
    #[must_use]
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.secret.to_bytes())
    }

    /// A share from its stored 32 bytes.
    ///
    /// # Errors
    /// [`WireError::InvalidScalar`] for a non-canonical scalar.
    pub fn from_bytes(id: NodeId, bytes: &[u8; 32]) -> Result<KeyShare, WireError> {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))
            .map(|secret| KeyShare { id, secret })
            .ok_or(WireError::InvalidScalar { field: "key share" })
    }
}

impl PartialEq for KeyShare {
    fn eq(&self, other: &KeyShare) -> bool {
        self.id == other.id && bool::from(self.secret.ct_eq(&other.secret))
    }
}

impl Eq for KeyShare {}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What a node holds when the DKG has ended.
#[derive(Debug, Clone)]
pub struct DkgOutput {
    /// The node's secret key share.
    pub key_share: KeyShare,
    /// The group public key `X = x·G`.
    pub group_public_key: RistrettoPoint,
    /// `Y_j = x_j·G` of every node that confirmed with a valid proof (this node included).
    pub verification_shares: BTreeMap<NodeId, RistrettoPoint>,
    /// The dealers whose polynomials make up the key.
    pub qualified: BTreeSet<NodeId>,
    /// The dealers left out, and why.
    pub disqualified: BTreeMap<NodeId, Disqualification>,
    /// Nodes that sent no confirmation (they hold a share but no verification share).
    pub unconfirmed: BTreeSet<NodeId>,
    /// Nodes whose confirmation proof failed.
    pub invalid_confirmations: BTreeSet<NodeId>,
    /// The transcript hash every confirming node agreed on.
    pub transcript: [u8; 32],
    /// Messages discarded during the run, with the reason.
    pub rejected: Vec<Rejected>,
}

/// A decoded message of any round.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // decoded once per message and consumed; boxing buys nothing
pub enum DkgMessage {
    /// Round 1.
    Deal(deal::Deal),
    /// Round 2.
    Complaint(complain::ComplaintMessage),
    /// Round 3.
    Justification(justify::JustificationMessage),
    /// Round 4.
    Confirmation(confirm::ConfirmationMessage),
}

impl DkgMessage {
    /// Decodes any DKG message of a session with threshold `threshold`.
    ///
    /// # Errors
    /// A [`WireError`] naming the first problem.
    pub fn from_bytes(bytes: &[u8], threshold: Threshold) -> Result<DkgMessage, WireError> {
        Ok(match peek_kind(bytes)? {
            MessageKind::DkgDeal => DkgMessage::Deal(deal::Deal::from_bytes(bytes, threshold)?),
            MessageKind::DkgComplaint => {
                DkgMessage::Complaint(complain::ComplaintMessage::from_bytes(bytes)?)
            }
            MessageKind::DkgJustification => DkgMessage::Justification(
                justify::JustificationMessage::from_bytes(bytes, threshold)?,
            ),
            MessageKind::DkgConfirmation => {
                DkgMessage::Confirmation(confirm::ConfirmationMessage::from_bytes(bytes)?)
            }
            other => {
                return Err(WireError::UnexpectedKind {
                    expected: MessageKind::DkgDeal,
                    got: other,
                });
            }
        })
    }

    /// The sender named in the message.
    #[must_use]
    pub fn sender(&self) -> NodeId {
        match self {
            DkgMessage::Deal(m) => m.dealer,
            DkgMessage::Complaint(m) => m.sender,
            DkgMessage::Justification(m) => m.sender,
            DkgMessage::Confirmation(m) => m.sender,
        }
    }

    /// The round the message belongs to.
    #[must_use]
    pub fn round(&self) -> Round {
        match self {
            DkgMessage::Deal(_) => Round::Deal,
            DkgMessage::Complaint(_) => Round::Complain,
            DkgMessage::Justification(_) => Round::Justify,
            DkgMessage::Confirmation(_) => Round::Confirm,
        }
    }
}

/// The bytes a broadcast message's signature covers: domain, session, then the encoding
/// without the signature.
pub(crate) fn signed_bytes(session: &SessionId, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(MESSAGE_SIGNATURE_DOMAIN.len() + 32 + body.len());
    v.extend_from_slice(MESSAGE_SIGNATURE_DOMAIN);
    v.extend_from_slice(&session.0);
    v.extend_from_slice(body);
    v
}

/// Signs a finished body and appends the signature.
pub(crate) fn sign_body<R: CryptoRng + ?Sized>(
    keys: &NodeKeys,
    session: &SessionId,
    mut w: Writer,
    rng: &mut R,
) -> Vec<u8> {
    let sig = keys.sign(&signed_bytes(session, w.as_slice()), rng);
    sig.write(&mut w);
    w.finish()
}

/// The body of a signed message (everything before the trailing signature).
pub(crate) fn body_of(bytes: &[u8]) -> &[u8] {
    bytes
        .get(..bytes.len().saturating_sub(SIGNATURE_LEN))
        .unwrap_or_default()
}

/// A dealer's view of one received deal.
#[derive(Debug, Clone)]
pub(crate) struct HeldDeal {
    pub(crate) commitment: PedersenCommitment,
    /// The dealer's ephemeral key `E_i` with its proof of possession.
    pub(crate) ephemeral: sealed::Ephemeral,
    /// Whether the ephemeral key's proof of possession holds.
    pub(crate) possession: bool,
    /// `D_i`, over the commitment and `E_i`.
    pub(crate) digest: [u8; 32],
    /// The ciphertext and the dealer's signature over it (none for this node's own deal).
    pub(crate) sealed: Option<([u8; deal::ENCRYPTED_SHARE_LEN], Signature)>,
    /// The share, if it decrypted and matched the commitment.
    pub(crate) share: Option<PedersenShare>,
}

/// A received message: its bytes and its decoding.
pub(crate) type Received = (Vec<u8>, DkgMessage);

/// State shared by every round.
pub(crate) struct Core {
    pub(crate) params: DkgParams,
    pub(crate) keys: NodeKeys,
    pub(crate) misbehaviour: Misbehaviour,
    /// This node's own polynomials, kept until its key share is computed.
    pub(crate) polynomial: Option<PedersenDealer>,
    /// What this node sealed and signed for each recipient (for redelivery in round 3).
    pub(crate) sent: BTreeMap<NodeId, ([u8; deal::ENCRYPTED_SHARE_LEN], Signature)>,
    /// Deals this node holds, by dealer (its own included).
    pub(crate) deals: BTreeMap<NodeId, HeldDeal>,
    pub(crate) rejected: Vec<Rejected>,
    /// Participants any message arrived from while round 1 was open (a discarded one too):
    /// a dealer without a commitment that is not among them sent nothing at all.
    pub(crate) heard_in_deal: BTreeSet<NodeId>,
    /// Messages of the current and the next round.
    pub(crate) inbox: inbox::Inbox<DkgMessage>,
}

impl Core {
    pub(crate) fn id(&self) -> NodeId {
        self.keys.id()
    }

    pub(crate) fn t(&self) -> u8 {
        self.params.threshold.t()
    }

    pub(crate) fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.id();
        self.params
            .participants
            .keys()
            .copied()
            .filter(move |id| *id != me)
    }

    pub(crate) fn reject(&mut self, from: NodeId, round: Round, reason: impl Into<String>) {
        self.rejected.push(Rejected {
            from,
            round,
            reason: reason.into(),
        });
    }

    /// Ends a round of broadcasts: the messages whose signatures hold, by sender; the
    /// others are recorded as rejected.
    pub(crate) fn verified_round<R: CryptoRng + ?Sized>(
        &mut self,
        round: Round,
        rng: &mut R,
    ) -> BTreeMap<NodeId, DkgMessage> {
        self.verified_round_bytes(round, rng)
            .into_iter()
            .map(|(from, (_, m))| (from, m))
            .collect()
    }

    /// [`Core::verified_round`] with each message's bytes.
    pub(crate) fn verified_round_bytes<R: CryptoRng + ?Sized>(
        &mut self,
        round: Round,
        rng: &mut R,
    ) -> BTreeMap<NodeId, Received> {
        let participants = &self.params.participants;
        let (out, forged) = self
            .inbox
            .take_round(|id| participants.get(&id).map(|k| &k.signing), rng);
        for from in forged {
            self.reject(from, round, "signature does not verify");
        }
        out
    }
}

fn message_signature(msg: &DkgMessage) -> Signature {
    match msg {
        DkgMessage::Deal(m) => m.signature,
        DkgMessage::Complaint(m) => m.signature,
        DkgMessage::Justification(m) => m.signature,
        DkgMessage::Confirmation(m) => m.signature,
    }
}

enum Phase {
    Deal,
    Complain,
    Justify(Box<justify::Pending>),
    Confirm(Box<confirm::Pending>),
    Done(Box<DkgOutput>),
}

/// One node's DKG: the driver feeds it messages and ends its rounds.
pub struct DkgSession {
    core: Box<Core>,
    phase: Phase,
}

impl fmt::Debug for DkgSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkgSession")
            .field("node", &self.core.id())
            .field("session", &self.core.params.session)
            .field("round", &self.round())
            .finish_non_exhaustive()
    }
}

impl DkgSession {
    /// Starts the DKG for the node holding `keys`: draws its polynomials and returns the
    /// round-1 messages (one deal per other participant).
    ///
    /// # Errors
    /// [`DkgError::InvalidParams`] if `keys` belong to no participant or do not match its
    /// registered public keys.
    pub fn start<R: CryptoRng + ?Sized>(
        params: DkgParams,
        keys: NodeKeys,
        rng: &mut R,
    ) -> Result<(DkgSession, Vec<Outgoing>), DkgError> {
        DkgSession::start_with(params, keys, Misbehaviour::Honest, rng)
    }

    /// [`DkgSession::start`] for a node that misbehaves as `misbehaviour` says (for
    /// adversarial tests, the simulator's fault injection and the CLI's `--faulty`).
    ///
    /// # Errors
    /// As [`DkgSession::start`].
    pub fn start_with<R: CryptoRng + ?Sized>(
        params: DkgParams,
        keys: NodeKeys,
        misbehaviour: Misbehaviour,
        rng: &mut R,
    ) -> Result<(DkgSession, Vec<Outgoing>), DkgError> {
        let registered = params.participants.get(&keys.id()).ok_or_else(|| {
            DkgError::InvalidParams(format!("node {} is not a participant", keys.id()))
        })?;
        if *registered != keys.public() {
            return Err(DkgError::InvalidParams(format!(
                "node {}'s keys do not match its registered public keys",
                keys.id()
            )));
        }
        let mut core = Box::new(Core {
            params,
            keys,
            misbehaviour,
            polynomial: None,
            sent: BTreeMap::new(),
            deals: BTreeMap::new(),
            rejected: Vec::new(),
            heard_in_deal: BTreeSet::new(),
            inbox: inbox::Inbox::default(),
        });
        let out = deal::start(&mut core, rng);
        Ok((
            DkgSession {
                core,
                phase: Phase::Deal,
            },
            out,
        ))
    }

    /// The current round.
    #[must_use]
    pub fn round(&self) -> Round {
        match self.phase {
            Phase::Deal => Round::Deal,
            Phase::Complain => Round::Complain,
            Phase::Justify(_) => Round::Justify,
            Phase::Confirm(_) => Round::Confirm,
            Phase::Done(_) => Round::Done,
        }
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.core.id()
    }

    /// The session parameters.
    #[must_use]
    pub fn params(&self) -> &DkgParams {
        &self.core.params
    }

    /// Accepts one message that the transport says came from `from`. Messages of the next
    /// round are kept until it starts. Signatures are checked in one batch when the round
    /// ends — and at once when a second, different message from the same sender arrives, so
    /// that a forged message never displaces a valid one.
    ///
    /// # Errors
    /// The message is rejected (and the session goes on) with [`DkgError::Malformed`],
    /// [`DkgError::UnknownSender`], [`DkgError::SenderMismatch`],
    /// [`DkgError::WrongRecipient`], [`DkgError::UnexpectedMessage`], [`DkgError::Forged`]
    /// or [`DkgError::Duplicate`]; [`DkgError::Finished`] after the last round.
    pub fn handle_message(&mut self, from: NodeId, bytes: &[u8]) -> Result<(), DkgError> {
        let current = self.round();
        if current == Round::Done {
            return Err(DkgError::Finished);
        }
        let key = self.core.params.keys_of(from)?.signing;
        if current == Round::Deal {
            self.core.heard_in_deal.insert(from);
        }
        let msg = DkgMessage::from_bytes(bytes, self.core.params.threshold)
            .map_err(|error| DkgError::Malformed { from, error })?;
        if msg.sender() != from {
            return Err(DkgError::SenderMismatch {
                transport: from,
                claimed: msg.sender(),
            });
        }
        let session = self.core.params.session;
        let signed = match &msg {
            DkgMessage::Deal(d) => {
                if d.recipient != self.id() {
                    return Err(DkgError::WrongRecipient {
                        from,
                        to: d.recipient,
                    });
                }
                sealed::deal_signed_bytes(
                    session.as_bytes(),
                    d.dealer,
                    &d.digest_of(&session, bytes),
                    d.recipient,
                    &d.encrypted_share,
                )
            }
            _ => signed_bytes(&session, body_of(bytes)),
        };
        let round = msg.round();
        let early = if round == current {
            false
        } else if Some(round) == next_round(current) {
            true
        } else {
            let got = peek_kind(bytes).unwrap_or(MessageKind::DkgDeal);
            return Err(DkgError::UnexpectedMessage {
                round: current,
                got,
                from,
            });
        };
        let signature = message_signature(&msg);
        let arrival = inbox::Arrival::new(bytes.to_vec(), msg, signed, signature);
        match self.core.inbox.offer(early, from, arrival, &key) {
            Ok(inbox::Kept::Held) => Ok(()),
            Ok(inbox::Kept::ReplacedForgery) => {
                self.core.reject(
                    from,
                    round,
                    "a forged message held before this one was dropped",
                );
                Ok(())
            }
            Err(inbox::Refusal::Forged) => {
                self.core.reject(from, round, "signature does not verify");
                Err(DkgError::Forged { from, round })
            }
            Err(inbox::Refusal::Second) => Err(DkgError::Duplicate { from, round }),
        }
    }

    /// Ends the current round: processes what arrived (anything missing counts as silence)
    /// and returns the session in its next round with the messages to send.
    ///
    /// # Errors
    /// [`DkgError::TooManyDisqualified`] after round 3, [`DkgError::TranscriptMismatch`] or
    /// [`DkgError::NotEnoughConfirmations`] after round 4, [`DkgError::Finished`] once done.
    pub fn end_round<R: CryptoRng + ?Sized>(
        self,
        rng: &mut R,
    ) -> Result<(DkgSession, Vec<Outgoing>), DkgError> {
        let DkgSession { mut core, phase } = self;
        let result = match phase {
            Phase::Deal => Ok((Phase::Complain, deal::finish(&mut core, rng))),
            Phase::Complain => {
                complain::finish(&mut core, rng).map(|(p, out)| (Phase::Justify(p), out))
            }
            Phase::Justify(pending) => {
                justify::finish(&mut core, *pending, rng).map(|(p, out)| (Phase::Confirm(p), out))
            }
            Phase::Confirm(pending) => confirm::finish(&mut core, *pending, rng)
                .map(|output| (Phase::Done(Box::new(output)), Vec::new())),
            Phase::Done(_) => Err(DkgError::Finished),
        };
        let (phase, out) = result?;
        Ok((DkgSession { core, phase }, out))
    }

    /// The result, once the last round has ended.
    #[must_use]
    pub fn output(&self) -> Option<&DkgOutput> {
        match &self.phase {
            Phase::Done(o) => Some(o),
            _ => None,
        }
    }

    /// Consumes the session, returning its result if it has ended.
    #[must_use]
    pub fn into_output(self) -> Option<DkgOutput> {
        match self.phase {
            Phase::Done(o) => Some(*o),
            _ => None,
        }
    }

    /// Messages discarded so far, with the reason.
    #[must_use]
    pub fn rejected(&self) -> &[Rejected] {
        &self.core.rejected
    }
}

fn next_round(r: Round) -> Option<Round> {
    match r {
        Round::Deal => Some(Round::Complain),
        Round::Complain => Some(Round::Justify),
        Round::Justify => Some(Round::Confirm),
        Round::Confirm | Round::Done => None,
    }
}
