//! The suppliers' HTTP APIs (docs/suppliers.md): the real-time stock gateway and the
//! purchase-order endpoint. `wire` holds their JSON shapes; `fake` a loopback server speaking
//! both, for tests and the demo world.

pub mod fake;
pub mod wire;
