#![doc = include_str!("../README.md")]

pub mod oprf;
pub mod vss;
