//! Wire formats of powerbank stations, as pure functions over bytes.
//!
//! - [`native`]: the JSON contract of `docs/mqtt.md`, shared by the host, the
//!   `station-native` plugin and the station simulator.
//! - [`volinks`]: volinks Powerbank Protocol V1 (Besiter cabinets): binary
//!   frames on `/powerbank/{imei}/user/update|heart`, JSON commands on
//!   `/powerbank/{imei}/user/get`.
//! - [`station`]: the host's own vocabulary (the WIT `station-types`), which
//!   both codecs decode into and encode from.
//!
//! Nothing here does I/O, and no function panics on input from a station: the
//! same code runs natively (host, simulator, benchmarks) and inside the Wasm
//! station-protocol plugins.

pub mod native;
pub mod station;
pub mod volinks;
