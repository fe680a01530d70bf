//! Warden: an actor-based supervision service (being built).

pub mod audit;
