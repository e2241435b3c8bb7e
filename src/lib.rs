pub mod climate;
pub mod harness;
pub mod hazard;
