//! Client commands for people at a terminal.

pub mod quote;
