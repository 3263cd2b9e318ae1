//! The local home folder (`--home`, `COLLECT_HOME`, default `.collect`):
//! the SQLite state, the outbox of sent messages, rejected rows, the
//! local settings, and every bundle revision the home ran under
//! (`bundles/<revision>.tar`, what `collect explain` replays with). Everything the local runtime needs comes from here and
//! from the policy's folder; nothing from the repository's secrets.

use chrono::NaiveTime;
use collect_delivery::bundle::BundleError;
use collect_delivery::bundle_store::{BundleDir, BundleStoreError, bundle_of_policy_file};
use collect_delivery::delivery::Sender;
use collect_delivery::mailer::Outbox;
use collect_delivery::message::paylink::MIN_KEY_LEN;
use collect_delivery::message::{PayLinkError, PayLinks};
use collect_engine::sweep::SweepOptions;
use collect_sqlite::store::{SqliteStore, StoreError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What can go wrong with the home folder: creating or reading it, its
/// settings, its database, and the pay-link key it signs with. Each
/// message names the folder, file or variable and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot create the home folder {}", dir.display())]
    CreateFolder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A read-only command on a folder that is no home (a mistyped `--home`).
    #[error(
        "no collect home at {}: it holds no collect.db.\n\
         help: check --home (or COLLECT_HOME); a home is created by `collect ingest DIR` \
         or `collect run`, and `collect demo` leaves one in <home>/demo",
        dir.display()
    )]
    NoHome { dir: PathBuf },
    #[error("cannot read {}", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `config.toml` is not valid TOML, or has a key it does not know.
    #[error("{}: {reason}", path.display())]
    Config {
        path: PathBuf,
        reason: toml::de::Error,
    },
    #[error("config.toml: {key} `{value}` is not a time like `10:00`")]
    BadTime { key: &'static str, value: String },
    #[error("config.toml: pay_url: {0}")]
    PayUrl(PayLinkError),
    #[error("{key}: {error}")]
    PayLinks { key: KeySource, error: PayLinkError },
    #[error(
        "{key}: the key is not valid UTF-8 text; set it to a random secret of at least \
         {MIN_KEY_LEN} characters, or unset it to use a local key file"
    )]
    KeyNotText { key: KeySource },
    #[error("{key}: the key must be at least {MIN_KEY_LEN} characters long, it has {len}")]
    KeyTooShort { key: KeySource, len: usize },
    #[error("{key}: the key is only spaces or other blanks; use a random secret")]
    BlankKey { key: KeySource },
    #[error("cannot read the pay-link key file {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the pay-link key file {}", path.display())]
    CreateKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the pay-link key file {}", path.display())]
    WriteKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The policy folder cannot be bundled to keep its revision.
    #[error("cannot keep the bundle revision of {} in the home: {source}", policy.display())]
    Bundle {
        policy: PathBuf,
        #[source]
        source: BundleError,
    },
    #[error(transparent)]
    BundleStore(#[from] BundleStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Local settings, from `<home>/config.toml` (every key optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_company")]
    pub company: String,
    #[serde(default = "default_sender")]
    pub sender: String,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The company's postal address, one line each, printed on the PDF of
    /// letters: `company_address = ["1 High Street", "London EC1A 1AA"]`.
    #[serde(default)]
    pub company_address: Vec<String>,
    /// The company's country, ISO 3166 alpha-2 (`company_country = "DE"`):
    /// a letter to a customer in another country ends its address block
    /// with the country's name.
    #[serde(default)]
    pub company_country: Option<String>,
    /// Where "pay now" links point; `{token}` is replaced by the signed token.
    #[serde(default = "default_pay_url")]
    pub pay_url: String,
    #[serde(default = "default_pay_link_days")]
    pub pay_link_days: u64,
    /// When the sweep sends, UTC, `HH:MM` (used when `send_time_local` is
    /// `off`, and by `--at`).
    #[serde(default = "default_send_time")]
    pub send_time_utc: String,
    /// Send to each customer at this time of their own day, `HH:MM`
    /// (default `10:00`), so one daily run reaches every time zone inside
    /// the quiet-hours limits; `off` uses `send_time_utc` for everyone.
    #[serde(default = "default_send_time_local")]
    pub send_time_local: String,
}

fn default_send_time_local() -> String {
    "10:00".to_string()
}

fn default_company() -> String {
    "Example Supplies Ltd".to_string()
}
fn default_sender() -> String {
    "receivables@example.com".to_string()
}
fn default_pay_url() -> String {
    "https://pay.example.com/invoice/{token}".to_string()
}
fn default_pay_link_days() -> u64 {
    45
}
fn default_send_time() -> String {
    "14:00".to_string()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            company: default_company(),
            sender: default_sender(),
            reply_to: None,
            company_address: Vec::new(),
            company_country: None,
            pay_url: default_pay_url(),
            pay_link_days: default_pay_link_days(),
            send_time_utc: default_send_time(),
            send_time_local: default_send_time_local(),
        }
    }
}

/// How long a local run holds the home without renewing its lease: a run
/// killed with `kill -9` blocks the next one at most this long.
pub const LEASE_TTL: chrono::Duration = chrono::Duration::minutes(2);

/// The outbox answers at once whether it holds a message: no grace needed.
pub const GRACE: chrono::Duration = chrono::Duration::zero();

pub struct Home {
    pub dir: PathBuf,
    pub settings: Settings,
}

/// The environment variable holding the pay-link signing key (at least 32
/// characters, not all blanks). Without it, a random key is created in the
/// home folder (`pay-link.key`, mode 600).
pub const KEY_VAR: &str = "COLLECT_PAY_LINK_KEY";

impl Home {
    pub fn open(dir: &Path) -> Result<Home, HomeError> {
        std::fs::create_dir_all(dir).map_err(|source| HomeError::CreateFolder {
            dir: dir.to_path_buf(),
            source,
        })?;
        let config = dir.join("config.toml");
        let settings = if config.exists() {
            let text =
                std::fs::read_to_string(&config).map_err(|source| HomeError::ReadConfig {
                    path: config.clone(),
                    source,
                })?;
            toml::from_str(&text).map_err(|reason| HomeError::Config {
                path: config.clone(),
                reason,
            })?
        } else {
            Settings::default()
        };
        Ok(Home {
            dir: dir.to_path_buf(),
            settings,
        })
    }

    /// Opens a home that must exist already, for commands that only read
    /// it: a mistyped `--home` is refused with a hint rather than created
    /// empty (which would make `tasks` or `report` succeed on nothing).
    pub fn open_existing(dir: &Path) -> Result<Home, HomeError> {
        if !dir.join("collect.db").is_file() {
            return Err(HomeError::NoHome {
                dir: dir.to_path_buf(),
            });
        }
        Home::open(dir)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("collect.db")
    }

    /// Every bundle revision the home ran under, one `<revision>.tar`
    /// each (see [`Home::keep_bundle`]).
    pub fn bundles(&self) -> BundleDir {
        BundleDir::new(self.dir.join("bundles"))
    }

    /// Where `explain` unpacks a kept bundle to read its templates
    /// (rewritten from the verified archive on every read).
    pub fn bundle_scratch(&self) -> PathBuf {
        self.dir.join("bundles").join("unpacked")
    }

    /// Keeps the bundle of the policy folder `policy` is in force in
    /// (policy, templates, manifest) under its bundle revision, unless it
    /// is kept already: the revision every action of the run records can
    /// then be explained with no checkout. `git` names the Git revision in
    /// the archive's manifest (the bundle revision leaves it out).
    pub fn keep_bundle(&self, policy: &Path, git: Option<&str>) -> Result<String, HomeError> {
        let (revision, bytes) = bundle_of_policy_file(policy, git.unwrap_or("not-in-git"))
            .map_err(|source| HomeError::Bundle {
                policy: policy.to_path_buf(),
                source,
            })?;
        self.bundles().put(&revision, &bytes)?;
        Ok(revision)
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.join("outbox")
    }

    pub fn store(&self) -> Result<SqliteStore, HomeError> {
        Ok(SqliteStore::open(&self.db_path())?)
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.outbox_dir())
    }

    pub fn sender(&self) -> Sender {
        Sender {
            company: self.settings.company.clone(),
            email: self.settings.sender.clone(),
            reply_to: self.settings.reply_to.clone(),
            address: self
                .settings
                .company_address
                .iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            country: self.settings.company_country.clone(),
        }
    }

    /// How the sweep sends: `--at HH:MM` (UTC, everyone at that moment),
    /// else each customer at `send_time_local` of their day, else everyone
    /// at `send_time_utc`.
    pub fn sweep_options(
        &self,
        git_revision: Option<String>,
        at: Option<NaiveTime>,
    ) -> Result<SweepOptions, HomeError> {
        let parse = |key: &'static str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| HomeError::BadTime {
                key,
                value: value.to_string(),
            })
        };
        let send_time_utc = match at {
            Some(t) => t,
            None => parse("send_time_utc", &self.settings.send_time_utc)?,
        };
        let customer_local_time = match (at, self.settings.send_time_local.as_str()) {
            (Some(_), _) | (None, "off") => None,
            (None, local) => Some(parse("send_time_local", local)?),
        };
        Ok(SweepOptions {
            git_revision,
            bundle_revision: None,
            send_time_utc,
            customer_local_time,
        })
    }

    /// The pay-link signer: the key from `COLLECT_PAY_LINK_KEY`, or a random
    /// key kept in `<home>/pay-link.key` for local use.
    pub fn pay_links(&self) -> Result<PayLinks, HomeError> {
        let (key, source) = self.pay_link_key()?;
        PayLinks::new(&key, &self.settings.pay_url).map_err(|e| match e {
            PayLinkError::BadPattern { .. } => HomeError::PayUrl(e),
            error => HomeError::PayLinks { key: source, error },
        })
    }

    /// Where the pay-link key comes from, for messages.
    pub fn pay_link_key_source(&self) -> KeySource {
        match std::env::var_os(KEY_VAR) {
            Some(_) => KeySource::Env,
            None => KeySource::File(self.key_path()),
        }
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// The key's bytes and where they came from. A variable that is set
    /// but is not UTF-8 text is an error (never a silent switch to the
    /// local key file); a key file is created readable by its owner only.
    fn pay_link_key(&self) -> Result<(Vec<u8>, KeySource), HomeError> {
        let source = self.pay_link_key_source();
        let key = match &source {
            KeySource::Env => std::env::var_os(KEY_VAR)
                .unwrap_or_default()
                .into_string()
                .map_err(|_| HomeError::KeyNotText {
                    key: source.clone(),
                })?
                .into_bytes(),
            KeySource::File(path) => {
                if !path.exists() {
                    create_key_file(path)?;
                } else {
                    owner_only(path);
                }
                std::fs::read(path).map_err(|e| HomeError::ReadKey {
                    path: path.clone(),
                    source: e,
                })?
            }
        };
        if key.len() < MIN_KEY_LEN {
            return Err(HomeError::KeyTooShort {
                key: source,
                len: key.len(),
            });
        }
        if key.iter().all(u8::is_ascii_whitespace) {
            return Err(HomeError::BlankKey { key: source });
        }
        Ok((key, source))
    }
}

/// The local key file, in the home folder.
pub const KEY_FILE: &str = "pay-link.key";

/// Where the pay-link signing key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(
                f,
                "the pay-link key from the environment variable {KEY_VAR}"
            ),
            KeySource::File(path) => write!(f, "the pay-link key file {}", path.display()),
        }
    }
}

/// A new random key (64 hex digits), readable and writable by its owner
/// only; never overwrites a file that appeared meanwhile.
fn create_key_file(path: &Path) -> Result<(), HomeError> {
    use std::io::Write;
    let key: [u8; 32] = rand::random();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file
            .write_all(hex.as_bytes())
            .map_err(|source| HomeError::WriteKey {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(HomeError::CreateKey {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Makes an existing key file readable by its owner only (files written by
/// earlier releases were readable by everyone), and says so.
fn owner_only(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => eprintln!(
                "note: the pay-link key file {} was readable by other users (mode {mode:o}); \
                 it is now readable by its owner only (600)",
                path.display()
            ),
            Err(e) => eprintln!(
                "warning: the pay-link key file {} is readable by other users (mode {mode:o}) \
                 and could not be changed ({e}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
