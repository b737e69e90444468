//! Image identifiers.
//!
//! An [`ImageId`] names one stored image across every node, the index and (later) the share
//! format. It is 64 bits: the owner's client draws it at random (or derives it from a counter),
//! so for a million images the chance of any collision is below 3·10⁻⁸, and every structure
//! that keys on it rejects a duplicate instead of overwriting, so a collision is reported, never
//! silent.

use std::fmt;
use std::str::FromStr;

/// The identifier of one image (64 bits, shown as 16 lower-case hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageId(pub u64);

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The text was not 1 to 16 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image id {text:?}: expected 1 to 16 hexadecimal digits")]
pub struct ParseImageIdError {
    /// The text that failed to parse.
    pub text: String,
}

impl FromStr for ImageId {
    type Err = ParseImageIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseImageIdError { text: s.to_owned() });
        }
        u64::from_str_radix(s, 16)
            .map(ImageId)
            .map_err(|_| ParseImageIdError { text: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_id_round_trips_through_text() {
        for v in [0, 1, 0xdead_beef, u64::MAX] {
            let id = ImageId(v);
            assert_eq!(id.to_string().parse::<ImageId>(), Ok(id));
        }
        assert_eq!(ImageId(0xab).to_string(), "00000000000000ab");
    }

    #[test]
    fn image_id_rejects_bad_text() {
        for bad in ["", "g", "12345678901234567", "-1", "0x12"] {
            assert!(bad.parse::<ImageId>().is_err(), "{bad}");
        }
    }
}
