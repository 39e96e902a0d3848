//! `linux.netDevices` (runtime-spec 1.3): existing host interfaces moved
//! into the container's network namespace at create, renamed as asked,
//! with their permanent global addresses and up. Never moved back: the
//! spec leaves that to the namespace's end (physical devices return to the
//! host, virtual ones are destroyed).

use std::os::fd::OwnedFd;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};
use crate::net::netlink::{Addr, Netlink, IFA_F_PERMANENT};

/// One device to move, checked before anything exists.
#[derive(Debug)]
pub struct NetDev {
    host_name: String,
    name: String,
    index: i32,
    addrs: Vec<Addr>,
}

/// A name the kernel takes for an interface (runc's rules): 1 to 15
/// bytes, not "." or "..", no '/', ':' or white space.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.chars().any(char::is_whitespace)
}

/// The devices of `linux.netDevices`, with what moving them needs: the
/// container has a network namespace of its own, every name is valid, and
/// every device exists here.
pub fn plan(spec: &Spec, own_netns: bool) -> Result<Vec<NetDev>> {
    let Some(devs) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(vec![]);
    };
    if devs.is_empty() {
        return Ok(vec![]);
    }
    if !own_netns {
        return Err(Error::Config(
            "linux.netDevices: the container has no network namespace of its own to move devices into".into(),
        ));
    }
    let mut nl =
        Netlink::open().map_err(|e| Error::sys("linux.netDevices: open a route socket", e))?;
    let mut names: Vec<&String> = devs.keys().collect();
    names.sort();
    let mut out = vec![];
    for host_name in names {
        let name = devs[host_name]
            .name()
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| host_name.clone());
        for n in [host_name, &name] {
            if !valid_name(n) {
                return Err(Error::Config(format!(
                    "linux.netDevices: invalid network device name {n:?}"
                )));
            }
        }
        let index = nl
            .link_index(host_name)
            .map_err(|e| Error::sys(format!("linux.netDevices {host_name:?}: look up"), e))?
            .ok_or_else(|| {
                Error::Config(format!(
                    "linux.netDevices {host_name:?}: no such network device here"
                ))
            })?;
        // The spec: keep every permanent address of global scope.
        let addrs = nl
            .addresses(index)
            .map_err(|e| Error::sys(format!("linux.netDevices {host_name:?}: list addresses"), e))?
            .into_iter()
            .filter(|a| a.flags & IFA_F_PERMANENT != 0 && a.scope == 0)
            .collect();
        out.push(NetDev {
            host_name: host_name.clone(),
            name,
            index,
            addrs,
        });
    }
    Ok(out)
}

/// Moves the devices into the network namespace of `pid`, then, there,
/// gives each its addresses back and brings it up.
pub fn move_all(devs: &[NetDev], pid: i32) -> Result<()> {
    if devs.is_empty() {
        return Ok(());
    }
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns: OwnedFd = crate::sys::own_fd(
        nix::fcntl::open(
            ns_path.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::path("open", &ns_path, e))?,
    );
    let mut host =
        Netlink::open().map_err(|e| Error::sys("linux.netDevices: open a route socket", e))?;
    let mut inside = Netlink::open_in(&netns)
        .map_err(|(what, e)| Error::sys(format!("linux.netDevices: {what}"), e))?;
    for d in devs {
        let err = |what: &str, e| {
            Error::sys(
                format!(
                    "linux.netDevices {:?} (as {:?}): {what}",
                    d.host_name, d.name
                ),
                e,
            )
        };
        // The spec: a name taken inside is an error (unless a template),
        // found before the device leaves: a failed rename after the move
        // would strand it in a namespace that is about to go.
        if !d.name.contains('%')
            && inside
                .link_index(&d.name)
                .map_err(|e| err("look up", e))?
                .is_some()
        {
            return Err(Error::Config(format!(
                "linux.netDevices {:?}: a device called {:?} already exists in the container",
                d.host_name, d.name
            )));
        }
        host.move_to(d.index, &netns, &d.name)
            .map_err(|e| err("move into the container's network namespace", e))?;
        // The index stays unless the namespace has it taken.
        let index = match inside.link_name(d.index).map_err(|e| err("look up", e))? {
            Some(_) => d.index,
            None => inside
                .link_index(&d.name)
                .map_err(|e| err("look up", e))?
                .ok_or_else(|| err("look up", nix::errno::Errno::ENODEV))?,
        };
        for a in &d.addrs {
            inside
                .add_address(index, a)
                .map_err(|e| err("add an address back", e))?;
        }
        inside.set_up(index).map_err(|e| err("bring up", e))?;
        crate::log::debug!("netDevices: {} is {} in the container", d.host_name, d.name);
    }
    Ok(())
}
