//! Embedded DNS (Docker's 127.0.0.11): the message codec, the name table and the server.

pub mod codec;
mod server;
mod table;

pub use server::{DnsError, DnsServer, DNS_ADDR};
pub use table::{DnsEntry, DnsTable};
