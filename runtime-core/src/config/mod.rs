//! Input, in the runtime before anything exists: the bundle loaded and
//! checked, the host-safety guards, ids, the default spec and features, and
//! the namespace plan.

pub(crate) mod bundle;
pub(crate) mod guard;
pub(crate) mod id;
pub(crate) mod namespaces;
pub(crate) mod spec;
