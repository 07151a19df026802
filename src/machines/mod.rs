//! The state machines. Each decides and never acts: it takes inputs that
//! carry their own clock readings and reports decisions, which a driver
//! turns into events (see [`crate::trackers`]).

// statig generates the `State` and `Superstate` enums without docs; each
// state is documented on its handler, with its transitions.
#[allow(missing_docs)]
pub mod controller;
#[allow(missing_docs)]
pub mod tracker;
