//! The local outbox: messages as `.eml` files in a folder.
//!
//! [`Outbox`] writes each message to `<dir>/<YYYY-MM-DD>/<message_id>.eml`
//! (the day it went out), atomically, with its attachments beside it
//! (`<message_id>.pdf`: the printable legal letter), written before the
//! `.eml` so a message found in the outbox always has its files, and never writes a message id found
//! under any day: sending the same message again, on any day, is harmless
//! and returns the first receipt.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Acceptance, MailError, Mailer, SendReceipt};
use crate::message::eml::{OutgoingMessage, check_message_id, to_rfc5322};

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

    /// Where a message with this id was written, on any day.
    pub fn find(&self, message_id: &str) -> Option<PathBuf> {
        let name = format!("{message_id}.eml");
        let days = fs::read_dir(&self.dir).ok()?;
        days.filter_map(Result::ok)
            .filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
            .map(|d| d.path().join(&name))
            .find(|p| p.is_file())
    }

    /// The folder half-written messages are written in, then moved out of.
    fn temp_dir(&self) -> PathBuf {
        self.dir.join(".tmp")
    }

    /// Where a message is (or would be) written.
    pub fn path_of(&self, msg: &OutgoingMessage) -> Result<PathBuf, MailError> {
        check_message_id(&msg.message_id)?;
        Ok(self
            .dir
            .join(msg.date.format("%Y-%m-%d").to_string())
            .join(format!("{}.eml", msg.message_id)))
    }

    /// Where the attachments of a message are saved: beside its `.eml`,
    /// named after the message and the attachment's extension
    /// (`<message_id>.pdf`; `<message_id>-2.pdf` for a second PDF).
    pub fn attachment_paths(&self, msg: &OutgoingMessage) -> Result<Vec<PathBuf>, MailError> {
        let eml = self.path_of(msg)?;
        let day_dir = eml.parent().unwrap_or(&self.dir);
        let mut seen: Vec<String> = Vec::new();
        Ok(msg
            .attachments
            .iter()
            .map(|a| {
                let ext = Path::new(&a.filename)
                    .extension()
                    .map(|e| e.to_string_lossy().to_ascii_lowercase())
                    .filter(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric()))
                    .unwrap_or_else(|| "bin".to_string());
                let n = seen.iter().filter(|e| **e == ext).count();
                seen.push(ext.clone());
                let name = if n == 0 {
                    format!("{}.{ext}", msg.message_id)
                } else {
                    format!("{}-{}.{ext}", msg.message_id, n + 1)
                };
                day_dir.join(name)
            })
            .collect())
    }
}

fn receipt_at(dir: &Path, path: &Path) -> SendReceipt {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    SendReceipt {
        provider_message_id: format!("outbox:{}", rel.display()),
    }
}

impl Mailer for Outbox {
    async fn send(&self, msg: &OutgoingMessage) -> Result<SendReceipt, MailError> {
        let path = self.path_of(msg)?;
        // Written before, on this day or any other: never a second copy.
        if let Some(found) = self.find(&msg.message_id) {
            return Ok(receipt_at(&self.dir, &found));
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
        let tmp_dir = self.temp_dir();
        fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;

        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Attachments first (replaced whole if a killed run left them).
        for (a, target) in msg.attachments.iter().zip(self.attachment_paths(msg)?) {
            let tmp = tmp_dir.join(format!(
                "{}.{}-{}.tmp",
                msg.message_id,
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let written = (|| {
                let mut file = fs::File::create(&tmp)?;
                file.write_all(&a.content)?;
                file.sync_all()?;
                fs::rename(&tmp, &target)
            })();
            if let Err(err) = written {
                let _ = fs::remove_file(&tmp);
                return Err(io(&target)(err));
            }
        }
        let tmp = tmp_dir.join(format!(
            "{}.{}-{}.tmp",
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
        Ok(receipt_at(&self.dir, &path))
    }

    async fn accepted(&self, message_id: &str) -> Result<Acceptance, MailError> {
        // A message file appears whole (hard link or rename) or not at all.
        Ok(match self.find(message_id) {
            Some(path) => Acceptance::Accepted {
                provider_message_id: receipt_at(&self.dir, &path).provider_message_id,
            },
            None => Acceptance::NotAccepted,
        })
    }

    async fn recover(&self) -> Result<(), MailError> {
        // Temp files of killed runs: in `.tmp/`, and (written by earlier
        // releases) `.msg-*.tmp` beside the messages. Only the lease holder
        // calls this, so no live writer owns them.
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for dir in entries.filter_map(Result::ok).map(|e| e.path()) {
            let Ok(files) = fs::read_dir(&dir) else {
                continue;
            };
            for f in files.filter_map(Result::ok).map(|e| e.path()) {
                if f.extension().is_some_and(|x| x == "tmp") {
                    fs::remove_file(&f).map_err(|source| MailError::Io {
                        message_id: String::new(),
                        path: f.clone(),
                        source,
                    })?;
                }
            }
        }
        Ok(())
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
    use crate::mailer::NullMailer;
    use crate::message::eml::tests::sample;
    use pollster::block_on;

    #[test]
    fn writes_once_and_resends_idempotently() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path().join("outbox"));
        let msg = sample();
        let first = block_on(outbox.send(&msg)).unwrap();
        let path = tmp.path().join("outbox/2025-03-14/msg-0001.eml");
        let written = fs::read(&path).unwrap();
        assert_eq!(written, to_rfc5322(&msg).unwrap());
        assert_eq!(first.provider_message_id, "outbox:2025-03-14/msg-0001.eml");

        // A re-send, even of changed content, leaves the file alone.
        let mut again = msg.clone();
        again.subject = "changed".into();
        let second = block_on(outbox.send(&again)).unwrap();
        assert_eq!(first, second);
        assert_eq!(fs::read(&path).unwrap(), written);

        // Nothing else in the folder (no temp files left behind).
        let names: Vec<_> = fs::read_dir(tmp.path().join("outbox/2025-03-14"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["msg-0001.eml"]);
        assert_eq!(
            fs::read_dir(tmp.path().join("outbox/.tmp"))
                .unwrap()
                .count(),
            0
        );

        // Sent again on a later day: found under its first day, not written twice.
        let mut later = msg.clone();
        later.date = later.date.succ_opt().unwrap();
        assert_eq!(block_on(outbox.send(&later)).unwrap(), first);
        assert!(!tmp.path().join("outbox/2025-03-15").exists());
        assert_eq!(
            block_on(outbox.accepted("msg-0001")).unwrap(),
            Acceptance::Accepted {
                provider_message_id: "outbox:2025-03-14/msg-0001.eml".into()
            }
        );
        assert_eq!(
            block_on(outbox.accepted("msg-0002")).unwrap(),
            Acceptance::NotAccepted
        );
    }

    #[test]
    fn attachments_are_saved_beside_the_message() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path());
        let mut msg = sample();
        let pdf = |body: &str| crate::message::Attachment {
            filename: "letter-2025-0042.pdf".into(),
            content_type: "application/pdf".into(),
            content: format!("%PDF-1.7 {body}").into_bytes(),
        };
        msg.attachments = vec![pdf("one"), pdf("two")];
        block_on(outbox.send(&msg)).unwrap();
        let day = tmp.path().join("2025-03-14");
        assert_eq!(fs::read(day.join("msg-0001.pdf")).unwrap(), b"%PDF-1.7 one");
        assert_eq!(
            fs::read(day.join("msg-0001-2.pdf")).unwrap(),
            b"%PDF-1.7 two"
        );
        let eml = fs::read_to_string(day.join("msg-0001.eml")).unwrap();
        assert!(eml.contains("application/pdf"), "{eml}");
        assert_eq!(fs::read_dir(tmp.path().join(".tmp")).unwrap().count(), 0);
    }

    #[test]
    fn recovery_removes_half_written_files() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path());
        fs::create_dir_all(tmp.path().join(".tmp")).unwrap();
        fs::create_dir_all(tmp.path().join("2025-03-14")).unwrap();
        fs::write(tmp.path().join(".tmp/msg-1.1-0.tmp"), "half").unwrap();
        fs::write(tmp.path().join("2025-03-14/.msg-2.1-0.tmp"), "half").unwrap();
        fs::write(tmp.path().join("2025-03-14/msg-3.eml"), "whole").unwrap();
        block_on(outbox.recover()).unwrap();
        assert!(!tmp.path().join(".tmp/msg-1.1-0.tmp").exists());
        assert!(!tmp.path().join("2025-03-14/.msg-2.1-0.tmp").exists());
        assert!(tmp.path().join("2025-03-14/msg-3.eml").exists());
    }

    #[test]
    fn rejects_unsafe_message_ids_and_bad_addresses() {
        let tmp = tempfile::tempdir().unwrap();
        let outbox = Outbox::new(tmp.path());
        let mut msg = sample();
        msg.message_id = "../../etc/passwd".into();
        assert!(matches!(
            block_on(outbox.send(&msg)),
            Err(MailError::InvalidMessageId { .. })
        ));
        let mut msg = sample();
        msg.from.email = "nope".into();
        assert!(matches!(
            block_on(outbox.send(&msg)),
            Err(MailError::InvalidSender { .. })
        ));
        let mut msg = sample();
        msg.to.email = "nope".into();
        assert!(matches!(
            block_on(outbox.send(&msg)),
            Err(MailError::InvalidAddress { .. })
        ));
        assert!(!tmp.path().join("2025-03-14/msg-0001.eml").exists());
    }

    #[test]
    fn an_outbox_that_cannot_be_written_is_a_failure_of_the_whole_service() {
        use crate::mailer::{FailureClass, io_class};
        use std::io::{Error, ErrorKind};
        let tmp = tempfile::tempdir().unwrap();
        // A file where the outbox folder should be.
        fs::write(tmp.path().join("outbox"), "not a folder").unwrap();
        let outbox = Outbox::new(tmp.path().join("outbox"));
        let err = block_on(outbox.send(&sample())).unwrap_err();
        assert_eq!(err.class(), FailureClass::Service, "{err}");
        assert!(
            err.to_string()
                .starts_with("message msg-0001: the outbox cannot be written at "),
            "{err}"
        );
        // A file where the day's folder should be.
        let outbox = Outbox::new(tmp.path().join("other"));
        fs::create_dir_all(tmp.path().join("other")).unwrap();
        fs::write(tmp.path().join("other/2025-03-14"), "in the way").unwrap();
        let err = block_on(outbox.send(&sample())).unwrap_err();
        assert_eq!(err.class(), FailureClass::Service, "{err}");
        // What passes is transient; what needs a person is not.
        for (kind, class) in [
            (ErrorKind::StorageFull, FailureClass::Transient),
            (ErrorKind::QuotaExceeded, FailureClass::Transient),
            (ErrorKind::Interrupted, FailureClass::Transient),
            (ErrorKind::TimedOut, FailureClass::Transient),
            (ErrorKind::PermissionDenied, FailureClass::Service),
            (ErrorKind::ReadOnlyFilesystem, FailureClass::Service),
            (ErrorKind::NotADirectory, FailureClass::Service),
            (ErrorKind::AlreadyExists, FailureClass::Service),
            (ErrorKind::NotFound, FailureClass::Service),
        ] {
            assert_eq!(io_class(&Error::from(kind)), class, "{kind:?}");
        }
        // ENOSPC as the OS reports it.
        assert_eq!(
            io_class(&Error::from_raw_os_error(28)),
            FailureClass::Transient
        );
    }

    #[test]
    fn null_mailer_records_nothing() {
        let receipt = block_on(NullMailer.send(&sample())).unwrap();
        assert_eq!(receipt.provider_message_id, "null:msg-0001");
    }
}
