//! Documented misbehaviours a node can be told to show, for adversarial tests, the
//! simulator's fault injection and `dealer-free-sis dkg --faulty`.
//!
//! An honest node uses [`Misbehaviour::Honest`]. Each other variant changes only what the
//! node *sends*, exactly as a faulty implementation or an attacker would; the receiving
//! nodes run the unmodified protocol. With at most `t − 1` misbehaving nodes (and
//! `n ≥ 2t − 1`) the honest nodes still agree on `QUAL` and the key.

use std::fmt;
use std::str::FromStr;

use phr_sis::NodeId;

/// What a faulty node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// Follows the protocol.
    #[default]
    Honest,
    /// Seals and signs a wrong share for `victim`; the victim's evidence disqualifies it.
    BadShare {
        /// The node that gets the wrong share.
        victim: NodeId,
    },
    /// Withholds `victim`'s deal and answers its complaint with a deal whose signature does
    /// not verify (so it is disqualified).
    BadJustification {
        /// The node that gets the wrong share.
        victim: NodeId,
    },
    /// Commits to a point that is not part of its polynomial (every share fails; it is
    /// disqualified).
    BadCommitment,
    /// Sends nothing at all, in any round.
    Silent,
    /// Sends one commitment (with matching shares) to the lower half of the other nodes and
    /// a different one to the upper half.
    Equivocate,
    /// Confirms with a verification share that is not its key share's (and a proof for it),
    /// so its proof fails: it is named in `invalid_confirmations` and gets no verification
    /// share.
    BadProof,
    /// Complains against an honest `accused` although its share was fine.
    FalseComplaint {
        /// The dealer falsely accused.
        accused: NodeId,
    },
}

impl Misbehaviour {
    pub(crate) fn is_silent(self) -> bool {
        matches!(self, Misbehaviour::Silent)
    }

    pub(crate) fn corrupts_share_for(self, to: NodeId) -> bool {
        match self {
            Misbehaviour::BadShare { victim } => victim == to,
            _ => false,
        }
    }

    pub(crate) fn withholds_deal_for(self, to: NodeId) -> bool {
        matches!(self, Misbehaviour::BadJustification { victim } if victim == to)
    }

    pub(crate) fn corrupts_justification_for(self, to: NodeId) -> bool {
        match self {
            Misbehaviour::BadJustification { victim } => victim == to,
            _ => false,
        }
    }

    pub(crate) fn falsely_accuses(self, dealer: NodeId) -> bool {
        matches!(self, Misbehaviour::FalseComplaint { accused } if accused == dealer)
    }

    /// Whether an honest run disqualifies a node that behaves like this.
    #[must_use]
    pub fn is_disqualifying(self) -> bool {
        matches!(
            self,
            Misbehaviour::BadJustification { .. }
                | Misbehaviour::BadShare { .. }
                | Misbehaviour::BadCommitment
                | Misbehaviour::Silent
                | Misbehaviour::Equivocate
        )
    }
}

impl fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misbehaviour::Honest => f.write_str("honest"),
            Misbehaviour::BadShare { victim } => write!(f, "bad-share:{victim}"),
            Misbehaviour::BadJustification { victim } => write!(f, "bad-justification:{victim}"),
            Misbehaviour::BadCommitment => f.write_str("bad-commitment"),
            Misbehaviour::Silent => f.write_str("silent"),
            Misbehaviour::Equivocate => f.write_str("equivocate"),
            Misbehaviour::BadProof => f.write_str("bad-proof"),
            Misbehaviour::FalseComplaint { accused } => write!(f, "false-complaint:{accused}"),
        }
    }
}

/// The names [`Misbehaviour::from_str`] accepts.
pub const MISBEHAVIOUR_NAMES: &str = "honest, silent, bad-commitment, equivocate, bad-proof, \
     bad-share:VICTIM, bad-justification:VICTIM, false-complaint:ACCUSED";

impl FromStr for Misbehaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (s, None),
        };
        let node = |what: &str| -> Result<NodeId, String> {
            let a = arg.ok_or_else(|| format!("{name} needs a node id: {name}:{what}"))?;
            a.parse::<NodeId>().map_err(|e| e.to_string())
        };
        let m = match name {
            "honest" => Misbehaviour::Honest,
            "silent" => Misbehaviour::Silent,
            "bad-commitment" => Misbehaviour::BadCommitment,
            "equivocate" => Misbehaviour::Equivocate,
            "bad-proof" => Misbehaviour::BadProof,
            "bad-share" => Misbehaviour::BadShare {
                victim: node("VICTIM")?,
            },
            "bad-justification" => Misbehaviour::BadJustification {
                victim: node("VICTIM")?,
            },
            "false-complaint" => Misbehaviour::FalseComplaint {
                accused: node("ACCUSED")?,
            },
            other => {
                return Err(format!(
                    "unknown misbehaviour {other:?}; expected one of: {MISBEHAVIOUR_NAMES}"
                ));
            }
        };
        if arg.is_some()
            && matches!(
                m,
                Misbehaviour::Honest
                    | Misbehaviour::Silent
                    | Misbehaviour::BadCommitment
                    | Misbehaviour::Equivocate
                    | Misbehaviour::BadProof
            )
        {
            return Err(format!("{name} takes no node id"));
        }
        Ok(m)
    }
}
