//! Loom models of stealpool's queue and sleep protocol.
//!
//! Placeholder: the models land with the loom issue. They will compile the real
//! engine in `../src` with `--cfg loom`, through `stealpool`'s `sync` facade.
