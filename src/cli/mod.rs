//! Client commands for people at a terminal.

pub mod keys;
pub mod quote;
