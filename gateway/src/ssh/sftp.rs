//! SFTP through the gateway, per scope: the vendor's packets are parsed (SFTP v3, the
//! version OpenSSH speaks); with read-only access every request that would change the asset
//! (opening for write, WRITE, REMOVE, RENAME, MKDIR, RMDIR, SETSTAT, FSETSTAT, SYMLINK,
//! extensions) is answered by the gateway itself with `SSH_FX_PERMISSION_DENIED` and never
//! forwarded. Files opened, and the bytes moved through each handle, become events.
//!
//! Packets are bounded ([`MAX_PACKET`]); anything malformed ends the session.

use std::collections::HashMap;

/// Largest SFTP packet accepted (OpenSSH uses at most 256 KiB).
pub const MAX_PACKET: usize = 1024 * 1024;

const SSH_FXP_OPEN: u8 = 3;
const SSH_FXP_CLOSE: u8 = 4;
const SSH_FXP_READ: u8 = 5;
const SSH_FXP_WRITE: u8 = 6;
const SSH_FXP_SETSTAT: u8 = 9;
const SSH_FXP_FSETSTAT: u8 = 10;
const SSH_FXP_REMOVE: u8 = 13;
const SSH_FXP_MKDIR: u8 = 14;
const SSH_FXP_RMDIR: u8 = 15;
const SSH_FXP_RENAME: u8 = 18;
const SSH_FXP_SYMLINK: u8 = 20;
const SSH_FXP_STATUS: u8 = 101;
const SSH_FXP_HANDLE: u8 = 102;
const SSH_FXP_DATA: u8 = 103;
const SSH_FXP_EXTENDED: u8 = 200;
const SSH_FXF_WRITE: u32 = 0x2;
const SSH_FXF_APPEND: u32 = 0x4;
const SSH_FXF_CREAT: u32 = 0x8;
const SSH_FXF_TRUNC: u32 = 0x10;
const SSH_FX_PERMISSION_DENIED: u32 = 3;

/// A malformed stream: what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(*first)
    }
    fn u32(&mut self) -> Option<u32> {
        let bytes = self.data.get(..4)?;
        self.data = self.data.get(4..)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        let bytes = self.data.get(..8)?;
        self.data = self.data.get(8..)?;
        Some(u64::from_be_bytes(bytes.try_into().ok()?))
    }
    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        let bytes = self.data.get(..len)?;
        self.data = self.data.get(len..)?;
        Some(bytes)
    }
}

/// Splits complete packets off `buffer` (each with its 4-byte length).
pub fn packets(buffer: &mut Vec<u8>) -> Result<Vec<Vec<u8>>, Malformed> {
    let mut out = Vec::new();
    loop {
        let Some(len) = (Reader {
            data: buffer.as_slice(),
        })
        .u32() else {
            return Ok(out);
        };
        let len = len as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(Malformed(format!("an SFTP packet of {len} bytes")));
        }
        if buffer.len() < 4 + len {
            return Ok(out);
        }
        out.push(buffer.drain(..4 + len).collect());
    }
}

/// What to do with one packet from the vendor.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it.
    Forward,
    /// Answer the vendor with this packet instead; `what` says what was refused.
    Refuse {
        /// The `SSH_FXP_STATUS` packet for the vendor.
        reply: Vec<u8>,
        /// What was refused, in words.
        what: String,
    },
}

/// A file transfer finished (its handle closed).
#[derive(Debug, PartialEq, Eq)]
pub struct Transfer {
    /// The file.
    pub path: String,
    /// Whether it was opened for writing.
    pub write: bool,
    /// Bytes read or written through the handle.
    pub bytes: u64,
}

/// The SFTP state of one session.
#[derive(Debug, Default)]
pub struct Filter {
    write_allowed: bool,
    opens: HashMap<u32, (String, bool)>,
    reads: HashMap<u32, Vec<u8>>,
    handles: HashMap<Vec<u8>, (String, bool, u64)>,
}

fn status(id: u32, message: &str) -> Vec<u8> {
    let mut body = vec![SSH_FXP_STATUS];
    body.extend_from_slice(&id.to_be_bytes());
    body.extend_from_slice(&SSH_FX_PERMISSION_DENIED.to_be_bytes());
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message.as_bytes());
    body.extend_from_slice(&0u32.to_be_bytes());
    let mut packet = (body.len() as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

impl Filter {
    /// A filter for a scope that allows writes or only reads.
    pub fn new(write_allowed: bool) -> Self {
        Self {
            write_allowed,
            ..Self::default()
        }
    }

    /// Judges a packet from the vendor (with its length prefix).
    pub fn vendor_packet(&mut self, packet: &[u8]) -> Result<Verdict, Malformed> {
        let bad = || Malformed("a truncated SFTP request".into());
        let mut r = Reader {
            data: packet.get(4..).ok_or_else(bad)?,
        };
        let kind = r.u8().ok_or_else(bad)?;
        // INIT (1) has a version, not an id.
        if kind == 1 {
            return Ok(Verdict::Forward);
        }
        let id = r.u32().ok_or_else(bad)?;
        let changes = match kind {
            SSH_FXP_OPEN => {
                let path = String::from_utf8_lossy(r.string().ok_or_else(bad)?).into_owned();
                let flags = r.u32().ok_or_else(bad)?;
                let write =
                    flags & (SSH_FXF_WRITE | SSH_FXF_APPEND | SSH_FXF_CREAT | SSH_FXF_TRUNC) != 0;
                if !write || self.write_allowed {
                    self.opens.insert(id, (path, write));
                    return Ok(Verdict::Forward);
                }
                format!("open {path} for writing")
            }
            SSH_FXP_WRITE => {
                let handle = r.string().ok_or_else(bad)?.to_vec();
                let _offset = r.u64().ok_or_else(bad)?;
                let data = r.string().ok_or_else(bad)?;
                if self.write_allowed {
                    if let Some(entry) = self.handles.get_mut(&handle) {
                        entry.2 += data.len() as u64;
                    }
                    return Ok(Verdict::Forward);
                }
                "write to a file".into()
            }
            SSH_FXP_READ => {
                let handle = r.string().ok_or_else(bad)?.to_vec();
                self.reads.insert(id, handle);
                return Ok(Verdict::Forward);
            }
            SSH_FXP_REMOVE | SSH_FXP_MKDIR | SSH_FXP_RMDIR | SSH_FXP_RENAME | SSH_FXP_SETSTAT
            | SSH_FXP_SYMLINK => {
                let path = String::from_utf8_lossy(r.string().ok_or_else(bad)?).into_owned();
                if self.write_allowed {
                    return Ok(Verdict::Forward);
                }
                let verb = match kind {
                    SSH_FXP_REMOVE => "remove",
                    SSH_FXP_MKDIR => "create the directory",
                    SSH_FXP_RMDIR => "remove the directory",
                    SSH_FXP_RENAME => "rename",
                    SSH_FXP_SETSTAT => "change attributes of",
                    _ => "link",
                };
                format!("{verb} {path}")
            }
            SSH_FXP_FSETSTAT | SSH_FXP_EXTENDED => {
                if self.write_allowed {
                    return Ok(Verdict::Forward);
                }
                "change a file (or use an SFTP extension)".into()
            }
            _ => return Ok(Verdict::Forward),
        };
        let message = format!("otgate: this grant allows downloads only: may not {changes}");
        Ok(Verdict::Refuse {
            reply: status(id, &message),
            what: changes,
        })
    }

    /// Looks at a packet from the asset; returns a finished transfer when a handle closes.
    pub fn asset_packet(&mut self, packet: &[u8]) -> Option<()> {
        let mut r = Reader {
            data: packet.get(4..)?,
        };
        let kind = r.u8()?;
        let id = r.u32()?;
        match kind {
            SSH_FXP_HANDLE => {
                let handle = r.string()?.to_vec();
                if let Some((path, write)) = self.opens.remove(&id) {
                    self.handles.insert(handle, (path, write, 0));
                }
            }
            SSH_FXP_DATA => {
                let data = r.string()?;
                if let Some(handle) = self.reads.remove(&id)
                    && let Some(entry) = self.handles.get_mut(&handle)
                {
                    entry.2 += data.len() as u64;
                }
            }
            _ => {
                self.reads.remove(&id);
            }
        }
        Some(())
    }

    /// A CLOSE from the vendor: the transfer through that handle, if it was a file.
    pub fn closed(&mut self, packet: &[u8]) -> Option<Transfer> {
        let mut r = Reader {
            data: packet.get(4..)?,
        };
        if r.u8()? != SSH_FXP_CLOSE {
            return None;
        }
        let _id = r.u32()?;
        let handle = r.string()?;
        let (path, write, bytes) = self.handles.remove(handle)?;
        Some(Transfer { path, write, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, id: u32, fields: &[&[u8]], flags: Option<u32>) -> Vec<u8> {
        let mut body = vec![kind];
        body.extend_from_slice(&id.to_be_bytes());
        for field in fields {
            body.extend_from_slice(&(field.len() as u32).to_be_bytes());
            body.extend_from_slice(field);
        }
        if let Some(flags) = flags {
            body.extend_from_slice(&flags.to_be_bytes());
            body.extend_from_slice(&0u32.to_be_bytes());
        }
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn read_only_refuses_changes_and_counts_downloads() {
        let mut f = Filter::new(false);
        assert_eq!(
            f.vendor_packet(&packet(SSH_FXP_OPEN, 1, &[b"/etc/hostname"], Some(1))),
            Ok(Verdict::Forward)
        );
        f.asset_packet(&packet(SSH_FXP_HANDLE, 1, &[b"h1"], None));
        f.vendor_packet(&packet(SSH_FXP_READ, 2, &[b"h1"], None))
            .unwrap();
        f.asset_packet(&packet(SSH_FXP_DATA, 2, &[b"ews-1\n"], None));
        let close = packet(SSH_FXP_CLOSE, 3, &[b"h1"], None);
        assert_eq!(
            f.closed(&close),
            Some(Transfer {
                path: "/etc/hostname".into(),
                write: false,
                bytes: 6
            })
        );
        let refused = f
            .vendor_packet(&packet(
                SSH_FXP_OPEN,
                4,
                &[b"/etc/passwd"],
                Some(SSH_FXF_WRITE | SSH_FXF_CREAT),
            ))
            .unwrap();
        assert!(matches!(refused, Verdict::Refuse { what, .. } if what.contains("/etc/passwd")));
        assert!(matches!(
            f.vendor_packet(&packet(SSH_FXP_REMOVE, 5, &[b"/x"], None))
                .unwrap(),
            Verdict::Refuse { .. }
        ));
        assert_eq!(
            Filter::new(true).vendor_packet(&packet(SSH_FXP_REMOVE, 5, &[b"/x"], None)),
            Ok(Verdict::Forward)
        );
    }

    #[test]
    fn packets_are_framed_and_bounded() {
        let mut buffer = packet(SSH_FXP_CLOSE, 1, &[b"h"], None);
        buffer.extend_from_slice(&[0, 0]);
        assert_eq!(packets(&mut buffer).unwrap().len(), 1);
        assert_eq!(buffer, vec![0, 0]);
        let mut huge = (u32::MAX).to_be_bytes().to_vec();
        assert!(packets(&mut huge).is_err());
        assert!(
            Filter::new(false)
                .vendor_packet(&[0, 0, 0, 1, SSH_FXP_OPEN])
                .is_err()
        );
    }
}
