//! The mail port and its local adapters.
//!
//! [`Outbox`] writes each message to `<dir>/<YYYY-MM-DD>/<message_id>.eml`,
//! atomically, and never rewrites a message already there: sending the same
//! message again is harmless and returns the same receipt. [`NullMailer`]
//! sends nothing (simulations).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::MailError;
use super::eml::{OutgoingMessage, check_message_id, to_rfc5322};

/// What the mail service answers when it accepts a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    pub provider_message_id: String,
}

/// The port a mail service implements. Sending the same `message_id` twice
/// must not deliver twice where the service allows it.
pub trait Mailer {
    fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError>;
}

/// Messages as `.eml` files in a folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: impl Into<PathBuf>) -> Outbox {
        Outbox { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a message is (or would be) written.
    pub fn path_of(&self, msg: &OutgoingMessage) -> Result<PathBuf, MailError> {
        check_message_id(&msg.message_id)?;
        Ok(self
            .dir
            .join(msg.date.format("%Y-%m-%d").to_string())
            .join(format!("{}.eml", msg.message_id)))
    }
}

fn receipt(msg: &OutgoingMessage) -> SendReceipt {
    SendReceipt {
        provider_message_id: format!(
            "outbox:{}/{}.eml",
            msg.date.format("%Y-%m-%d"),
            msg.message_id
        ),
    }
}

impl Mailer for Outbox {
    fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        let path = self.path_of(msg)?;
        if path.exists() {
            return Ok(receipt(msg));
        }
        let bytes = to_rfc5322(msg)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MailError::Io {
                message_id: msg.message_id.clone(),
                path,
                source,
            }
        };
        let day_dir = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(day_dir).map_err(io(day_dir))?;

        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let tmp = day_dir.join(format!(
            ".{}.{}-{}.tmp",
            msg.message_id,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(&tmp)(err));
        }
        // A hard link never replaces an existing file: if another sender got
        // there first, its file stays. Where hard links are not supported,
        // fall back to a rename (atomic too, but replacing).
        let placed = match fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(_) => fs::rename(&tmp, &path),
        };
        let _ = fs::remove_file(&tmp);
        placed.map_err(io(&path))?;
        // Best effort: make the new directory entry durable.
        if let Ok(d) = fs::File::open(day_dir) {
            let _ = d.sync_all();
        }
        Ok(receipt(msg))
    }
}

/// Sends nothing and records nothing; still checks that the message builds.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullMailer;

impl Mailer for NullMailer {
    fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        to_rfc5322(msg)?;
        Ok(SendReceipt {
            provider_message_id: format!("null:{}", msg.message_id),
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::message::eml::tests::sample;

    #[test]
    fn writes_once_and_resends_idempotently() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path().join("outbox"));
        let msg = sample();
        let first = outbox.send(&msg).unwrap();
        let path = tmp.path().join("outbox/2025-03-14/msg-0001.eml");
        let written = fs::read(&path).unwrap();
        assert_eq!(written, to_rfc5322(&msg).unwrap());
        assert_eq!(first.provider_message_id, "outbox:2025-03-14/msg-0001.eml");

        // A re-send, even of changed content, leaves the file alone.
        let mut again = msg.clone();
        again.subject = "changed".into();
        let second = outbox.send(&again).unwrap();
        assert_eq!(first, second);
        assert_eq!(fs::read(&path).unwrap(), written);

        // Nothing else in the folder (no temp files left behind).
        let names: Vec<_> = fs::read_dir(tmp.path().join("outbox/2025-03-14"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["msg-0001.eml"]);
    }

    #[test]
    fn rejects_unsafe_message_ids_and_bad_addresses() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path());
        let mut msg = sample();
        msg.message_id = "../../etc/passwd".into();
        assert!(matches!(
            outbox.send(&msg),
            Err(MailError::InvalidMessageId { .. })
        ));
        let mut msg = sample();
        msg.from.email = "nope".into();
        assert!(matches!(
            outbox.send(&msg),
            Err(MailError::InvalidAddress { .. })
        ));
        assert!(!tmp.path().join("2025-03-14/msg-0001.eml").exists());
    }

    #[test]
    fn null_mailer_records_nothing() {
        let receipt = NullMailer.send(&sample()).unwrap();
        assert_eq!(receipt.provider_message_id, "null:msg-0001");
    }
}
