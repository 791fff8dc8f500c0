//! A small synchronous rtnetlink client: the link, address and route
//! requests bridge networking makes, encoded by hand over a `NETLINK_ROUTE`
//! socket instead of one `ip` process each.
//!
//! The socket talks to the network namespace of the thread that opened it,
//! so code that configures a container's side opens one inside
//! [`super::NetNs::enter`]. Every request asks for an acknowledgement and
//! waits for it; a kernel error comes back as the `io::Error` of its errno.
//! Replies are parsed with bounds checks only: a short or malformed message
//! is an error, never a panic.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

// Fixed kernel ABI (include/uapi/linux/{netlink,rtnetlink,if_link,veth}.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const IFF_UP: u32 = 0x1;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
/// An `ifinfomsg`: family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;

/// A link as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub up: bool,
}

/// A `NETLINK_ROUTE` socket bound to the opening thread's network namespace.
#[derive(Debug)]
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Self { fd, seq: 0 })
    }

    /// The link called `name`, or `None` if there is none.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut msg = Message::new(RTM_GETLINK, 0);
        msg.ifinfo(AF_UNSPEC, 0, 0, 0);
        msg.attr(IFLA_IFNAME, &c_name(name)?);
        let mut found = None;
        let acked = self.request(msg, |ty, payload| {
            if ty == RTM_NEWLINK && payload.len() >= IFINFOMSG_LEN {
                found = Some(Link {
                    index: u32_at(payload, 4),
                    up: u32_at(payload, 8) & IFF_UP != 0,
                });
            }
        });
        match acked {
            Ok(()) => Ok(found),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge called `name` (down, no address).
    pub fn add_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.ifinfo(AF_UNSPEC, 0, 0, 0);
        msg.attr(IFLA_IFNAME, &c_name(name)?);
        let info = msg.nest(IFLA_LINKINFO);
        msg.attr(IFLA_INFO_KIND, b"bridge");
        msg.end(info);
        self.request(msg, |_, _| ())
    }

    /// Creates a veth pair: `name` here, `peer` directly in the network
    /// namespace `peer_netns` (as `ip link add NAME type veth peer name
    /// PEER netns NS`).
    pub fn add_veth(&mut self, name: &str, peer: &str, peer_netns: BorrowedFd) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.ifinfo(AF_UNSPEC, 0, 0, 0);
        msg.attr(IFLA_IFNAME, &c_name(name)?);
        let info = msg.nest(IFLA_LINKINFO);
        msg.attr(IFLA_INFO_KIND, b"veth");
        let data = msg.nest(IFLA_INFO_DATA);
        let peer_info = msg.nest(VETH_INFO_PEER);
        msg.ifinfo(AF_UNSPEC, 0, 0, 0);
        msg.attr(IFLA_IFNAME, &c_name(peer)?);
        msg.attr(IFLA_NET_NS_FD, &peer_netns.as_raw_fd().to_ne_bytes());
        msg.end(peer_info);
        msg.end(data);
        msg.end(info);
        self.request(msg, |_, _| ())
    }

    /// Sets link `index` up, first enslaving it to `master` if given.
    pub fn set_up(&mut self, index: u32, master: Option<u32>) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.ifinfo(AF_UNSPEC, index, IFF_UP, IFF_UP);
        if let Some(master) = master {
            msg.attr(IFLA_MASTER, &master.to_ne_bytes());
        }
        self.request(msg, |_, _| ())
    }

    /// Deletes the link called `name`; `false` if there was none.
    pub fn del_link(&mut self, name: &str) -> io::Result<bool> {
        let mut msg = Message::new(RTM_DELLINK, 0);
        msg.ifinfo(AF_UNSPEC, 0, 0, 0);
        msg.attr(IFLA_IFNAME, &c_name(name)?);
        match self.request(msg, |_, _| ()) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `addr/prefix` to link `index`; with `replace`, an existing
    /// equal address is no error (`ip addr replace`), else it is (`ip addr add`).
    pub fn add_addr(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix: u8,
        replace: bool,
    ) -> io::Result<()> {
        let how = if replace { NLM_F_REPLACE } else { NLM_F_EXCL };
        let mut msg = Message::new(RTM_NEWADDR, NLM_F_CREATE | how);
        // ifaddrmsg: family, prefixlen, flags, scope, index.
        msg.bytes(&[AF_INET, prefix, 0, RT_SCOPE_UNIVERSE]);
        msg.bytes(&index.to_ne_bytes());
        msg.attr(IFA_LOCAL, &addr.octets());
        msg.attr(IFA_ADDRESS, &addr.octets());
        self.request(msg, |_, _| ())
    }

    /// Adds a default route via `gateway` to the main table.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
        // type, flags.
        msg.bytes(&[
            AF_INET,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        msg.bytes(&0u32.to_ne_bytes());
        msg.attr(RTA_GATEWAY, &gateway.octets());
        self.request(msg, |_, _| ())
    }

    /// Sends `msg` and reads replies until its acknowledgement, handing
    /// every other reply of it to `on_reply` (message type, payload).
    fn request(&mut self, msg: Message, mut on_reply: impl FnMut(u16, &[u8])) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let buf = msg.finish(seq);
        let sent = send(self.fd.as_raw_fd(), &buf, MsgFlags::empty())?;
        if sent != buf.len() {
            return Err(io::Error::other("short write to netlink socket"));
        }
        let mut reply = vec![0u8; 32 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut reply, MsgFlags::empty())?;
            let mut rest = reply.get(..n).unwrap_or_default();
            while !rest.is_empty() {
                let (len, ty, reply_seq) = header(rest)?;
                let payload = &rest[NLMSG_HDRLEN..len];
                rest = rest.get(align(len)..).unwrap_or_default();
                if reply_seq != seq {
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .ok_or_else(|| malformed("short error message"))?;
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(io::Error::from_raw_os_error(code.saturating_neg()))
                        };
                    }
                    NLMSG_DONE => return Ok(()),
                    _ => on_reply(ty, payload),
                }
            }
        }
    }
}

/// Length, type and sequence number of the message at the start of `buf`,
/// the length checked against the buffer.
fn header(buf: &[u8]) -> io::Result<(usize, u16, u32)> {
    if buf.len() < NLMSG_HDRLEN {
        return Err(malformed("truncated message header"));
    }
    let len = u32_at(buf, 0) as usize;
    if len < NLMSG_HDRLEN || len > buf.len() {
        return Err(malformed("message length out of bounds"));
    }
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    Ok((len, ty, u32_at(buf, 8)))
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed netlink reply: {what}"),
    )
}

/// The native-endian u32 at `at`; callers check the length first.
fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// `name` NUL-terminated, checked like the kernel does (1-15 bytes, no NUL,
/// '/' or whitespace) so a bad name fails here with its name.
fn c_name(name: &str) -> io::Result<Vec<u8>> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && !name
            .bytes()
            .any(|b| b == 0 || b == b'/' || b.is_ascii_whitespace());
    if !ok {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?}"),
        ));
    }
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    Ok(bytes)
}

/// A request under construction: header, fixed part, attributes.
struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(ty: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        Self { buf }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn ifinfo(&mut self, family: u8, index: u32, flags: u32, change: u32) {
        self.bytes(&[family, 0, 0, 0]);
        self.bytes(&index.to_ne_bytes());
        self.bytes(&flags.to_ne_bytes());
        self.bytes(&change.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn attr(&mut self, ty: u16, payload: &[u8]) {
        self.pad();
        // Attribute payloads here are a few bytes; the u16 length holds them.
        let len = (4 + payload.len()) as u16;
        self.bytes(&len.to_ne_bytes());
        self.bytes(&ty.to_ne_bytes());
        self.bytes(payload);
    }

    /// Opens a nested attribute; [`Self::end`] closes it.
    fn nest(&mut self, ty: u16) -> usize {
        self.pad();
        let start = self.buf.len();
        self.bytes(&[0, 0]);
        self.bytes(&ty.to_ne_bytes());
        start
    }

    fn end(&mut self, start: usize) {
        self.pad();
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        self.pad();
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_are_padded_and_sized() {
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE);
        msg.ifinfo(AF_UNSPEC, 7, IFF_UP, IFF_UP);
        let info = msg.nest(IFLA_LINKINFO);
        msg.attr(IFLA_INFO_KIND, b"veth");
        msg.end(info);
        let buf = msg.finish(42);
        assert_eq!(buf.len(), NLMSG_HDRLEN + IFINFOMSG_LEN + 4 + 8);
        assert_eq!(header(&buf).unwrap(), (buf.len(), RTM_NEWLINK, 42));
        let flags = u16::from_ne_bytes([buf[6], buf[7]]);
        assert_eq!(flags, NLM_F_CREATE | NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(u32_at(&buf, NLMSG_HDRLEN + 4), 7);
        let nest = NLMSG_HDRLEN + IFINFOMSG_LEN;
        assert_eq!(u16::from_ne_bytes([buf[nest], buf[nest + 1]]), 12);
        assert_eq!(&buf[nest + 8..nest + 12], b"veth");
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(header(&[0; 8]).is_err());
        let mut short = [0u8; 16];
        short[0] = 200; // claims more than there is
        assert!(header(&short).is_err());
        short[0] = 4; // less than a header
        assert!(header(&short).is_err());
    }

    #[test]
    fn interface_names_are_checked() {
        assert_eq!(c_name("eth0").unwrap(), b"eth0\0");
        for bad in ["", "sixteen-bytes-xx", "a/b", "a b", "a\0b"] {
            assert!(c_name(bad).is_err(), "{bad:?}");
        }
    }
}
