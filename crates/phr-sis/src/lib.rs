#![doc = include_str!("../README.md")]

pub mod fp61;
pub mod gf256;
pub mod image_id;
pub mod index;
pub mod kernels;
pub mod params;
pub mod phash;
pub mod shamir;
pub mod share;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token_index;

pub use image_id::ImageId;
pub use index::{BandLayout, RankedCandidate, SearchParams, SearchableSISIndex};
pub use params::{NodeId, ParamsError, Threshold};
pub use phash::{HashAlgorithm, ImageError, ImageHash, LumaImage};
pub use token_index::TokenIndex;
