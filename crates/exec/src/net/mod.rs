//! Networking for sandboxes: namespaces to join, the build network, bridge
//! networks for containers and published ports.
//!
//! - [`NetNs`]: a network namespace held by a descriptor; its
//!   [`path`](NetNs::path) goes into [`crate::Network::Join`] so sandboxes
//!   join it instead of creating one.
//! - [`BuildNetwork`]: one per build, user-mode (slirp4netns): reaches the
//!   outside, never the host's loopback or abstract unix sockets; every RUN
//!   step joins it at no per-step cost.
//! - [`BridgeNetwork`] and [`Endpoint`]: `buildr run --network bridge`,
//!   a veth per container on a bridge buildr creates, addresses leased from
//!   a range buildr owns, optional NAT; [`PortProxy`] publishes ports.

mod bridge;
pub(crate) mod dns;
mod ipam;
mod netlink;
mod netns;
mod proxy;
mod slirp;

pub use bridge::{AttachOptions, BridgeConfig, BridgeNetwork, Endpoint};
pub use ipam::Subnet;
pub use netns::NetNs;
pub use proxy::{PortMapping, PortProxy, Protocol};
pub(crate) use slirp::ensure_started;
pub use slirp::{BuildNetwork, BuildNetworkOptions, SLIRP_DNS};
