//! Fault injection and seeded chaos scenarios for Warden (being built).
