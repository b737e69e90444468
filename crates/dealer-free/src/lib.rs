#![doc = include_str!("../README.md")]

pub mod dkg;
pub mod identity;
pub mod mpc;
pub mod oprf;
pub mod payload;
pub mod record;
pub mod reshare;
pub mod vss;
pub mod wire;
