//! Node identities and sharing parameters, validated once at the edge.
//!
//! A [`NodeId`] is a storage node's number, 1 to 255; it is also the node's x-coordinate in
//! every Shamir sharing, which is why it can never be 0 (the secret lives at x = 0). A
//! [`Threshold`] is a validated `(t, n)` pair with `1 <= t <= n <= 255`: any `t` of the `n`
//! nodes reconstruct, any `t - 1` learn nothing. Holding one of these types means the check
//! has been done, so the rest of the library never re-checks or panics on them.

use std::fmt;
use std::num::NonZeroU8;
use std::str::FromStr;

/// A node's identity and Shamir x-coordinate: 1 to 255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(NonZeroU8);

impl NodeId {
    /// The node with this number.
    ///
    /// # Errors
    /// [`ParamsError::ZeroNodeId`] for 0.
    pub fn new(id: u8) -> Result<NodeId, ParamsError> {
        NonZeroU8::new(id)
            .map(NodeId)
            .ok_or(ParamsError::ZeroNodeId)
    }

    /// The node number (also its x-coordinate), 1 to 255.
    #[must_use]
    pub fn get(self) -> u8 {
        self.0.get()
    }

    /// Nodes `1..=n`.
    pub fn first(n: u8) -> impl Iterator<Item = NodeId> {
        (1..=n).filter_map(NonZeroU8::new).map(NodeId)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for NodeId {
    type Err = ParamsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: u8 = s
            .parse()
            .map_err(|_| ParamsError::BadNodeId(s.to_owned()))?;
        NodeId::new(v)
    }
}

impl TryFrom<u8> for NodeId {
    type Error = ParamsError;

    fn try_from(v: u8) -> Result<Self, Self::Error> {
        NodeId::new(v)
    }
}

/// A validated `(t, n)`: `1 <= t <= n <= 255`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Threshold {
    t: u8,
    n: u8,
}

impl Threshold {
    /// `t` of `n`.
    ///
    /// # Errors
    /// [`ParamsError::ZeroThreshold`] for `t = 0`, [`ParamsError::ThresholdAboveNodes`] for
    /// `t > n`.
    pub fn new(t: u8, n: u8) -> Result<Threshold, ParamsError> {
        if t == 0 {
            return Err(ParamsError::ZeroThreshold);
        }
        if t > n {
            return Err(ParamsError::ThresholdAboveNodes { t, n });
        }
        Ok(Threshold { t, n })
    }

    /// Like [`Threshold::new`] from wider integers (command-line values).
    ///
    /// # Errors
    /// As [`Threshold::new`], plus [`ParamsError::TooManyNodes`] for `n > 255`.
    pub fn from_usize(t: usize, n: usize) -> Result<Threshold, ParamsError> {
        let n8 = u8::try_from(n).map_err(|_| ParamsError::TooManyNodes(n))?;
        let t8 =
            u8::try_from(t).map_err(|_| ParamsError::ThresholdAboveNodes { t: u8::MAX, n: n8 })?;
        Threshold::new(t8, n8)
    }

    /// The number of shares needed to reconstruct.
    #[must_use]
    pub fn t(self) -> u8 {
        self.t
    }

    /// The number of nodes.
    #[must_use]
    pub fn n(self) -> u8 {
        self.n
    }

    /// Every node, `1..=n`.
    pub fn nodes(self) -> impl Iterator<Item = NodeId> {
        NodeId::first(self.n)
    }

    /// Nodes needed for a secure distance (degree `2t − 2` products): `2t − 1`.
    #[must_use]
    pub fn search_quorum(self) -> u16 {
        2 * u16::from(self.t) - 1
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-of-{}", self.t, self.n)
    }
}

/// Parameters that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// Node ids are Shamir x-coordinates; 0 would be the secret itself.
    #[error("node id 0 is not allowed: node ids are 1 to 255")]
    ZeroNodeId,
    /// Text that is not a node number.
    #[error("invalid node id {0:?}: node ids are 1 to 255")]
    BadNodeId(String),
    /// `t = 0` would need no share at all.
    #[error("threshold t = 0 is not allowed: t must be at least 1")]
    ZeroThreshold,
    /// `t > n`: the image could never be reconstructed.
    #[error("threshold t = {t} exceeds the number of nodes n = {n}: t must be at most n")]
    ThresholdAboveNodes {
        /// The threshold asked for.
        t: u8,
        /// The number of nodes.
        n: u8,
    },
    /// More than 255 nodes.
    #[error("{0} nodes requested: at most 255 are supported")]
    TooManyNodes(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_accepts_exactly_the_workable_pairs() {
        assert!(Threshold::new(1, 1).is_ok());
        assert!(Threshold::new(255, 255).is_ok());
        assert_eq!(Threshold::new(0, 3), Err(ParamsError::ZeroThreshold));
        assert_eq!(
            Threshold::new(4, 3),
            Err(ParamsError::ThresholdAboveNodes { t: 4, n: 3 })
        );
        // The library's own floor is t = 1; its messages name no range the CLI would
        // contradict (the CLI asks for 2 ≤ T ≤ N ≤ 255 and says so itself).
        assert_eq!(
            ParamsError::ThresholdAboveNodes { t: 4, n: 3 }.to_string(),
            "threshold t = 4 exceeds the number of nodes n = 3: t must be at most n"
        );
        assert_eq!(
            Threshold::from_usize(3, 300),
            Err(ParamsError::TooManyNodes(300))
        );
        assert_eq!(Threshold::new(3, 5).unwrap().search_quorum(), 5);
    }

    #[test]
    fn node_ids_are_one_to_255() {
        assert_eq!(NodeId::new(0), Err(ParamsError::ZeroNodeId));
        assert_eq!(NodeId::new(7).unwrap().get(), 7);
        assert_eq!(
            NodeId::first(3).map(NodeId::get).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!("0".parse::<NodeId>().is_err());
        assert!("256".parse::<NodeId>().is_err());
        assert_eq!("9".parse::<NodeId>().unwrap().get(), 9);
    }
}
