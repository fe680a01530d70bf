//! OTP-style supervision on ractor (being built).
