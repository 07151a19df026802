//! The state machines. Each decides and never acts: it takes inputs that
//! carry their own clock readings and reports decisions, which the engine
//! turns into events ([`crate::trackers`] for the trackers, the engine's
//! host side for the controller).

// statig generates the `State` and `Superstate` enums without docs; each
// state is documented on its handler, with its transitions.
#[allow(missing_docs)]
pub mod controller;
#[allow(missing_docs)]
pub mod tracker;
