//! Networking done by the runtime: `linux.netDevices` moved into the
//! container's network namespace over a small rtnetlink client.

pub(crate) mod netdev;
pub(crate) mod netlink;
