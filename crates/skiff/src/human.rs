//! Docker's human-readable sizes and durations: shared with the daemon (which words `ps`
//! statuses), so they live in the engine.

pub use skiff_engine::human::*;
