//! Test support: a local AWS endpoint (moto server) that `cargo test`
//! starts by itself, and the one [`Fixture`] of the AWS tests: a test's
//! resources on it, the adapters over them, and the events that seed them.
//!
//! On first use moto is installed into a virtualenv under `target/`
//! (`python3 -m venv target/moto-venv`, then `pip install
//! moto[server]==5.1.22`: pinned, as 5.2.x answers GetBucketVersioning in a
//! form the Rust SDK cannot parse), guarded by a lock directory so parallel
//! test processes do not race. The server listens on a free port of
//! 127.0.0.1 and stops when its [`Moto`] is dropped, or, for the shared
//! instance, when the test process exits (it watches its standard input,
//! which closes with the process). If it cannot be installed or started,
//! the tests fail with the reason: they are never skipped.

// Test support: a failed setup step fails the test, with its reason.
#![allow(clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub mod fixture;
pub mod work_queue;

pub use fixture::{
    DropReport, Fixture, Names, create_table, day, invoice, invoke, payment, sqs_event,
};

/// Why the local endpoint could not be installed, started or asked.
#[derive(Debug)]
pub enum SetupError {
    /// A file-system or network step failed: what it was, and why.
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Another test process holds the install lock for too long.
    LockTimeout { path: PathBuf },
    /// A command ran and failed: what it was, its status and output.
    Command {
        what: String,
        status: std::process::ExitStatus,
        output: String,
    },
    /// The server started, but does not accept connections.
    NotListening { endpoint: String },
    /// The server (or a helper script) answered something unexpected.
    Unexpected { what: String, said: String },
    /// moto's record of sent mail is not the JSON expected.
    Json(serde_json::Error),
}

impl SetupError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
        let what = what.into();
        move |source| SetupError::Io { what, source }
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Io { what, source } => write!(f, "{what}: {source}"),
            SetupError::LockTimeout { path } => write!(
                f,
                "timed out waiting for the lock {}; remove it if no test is running",
                path.display()
            ),
            SetupError::Command {
                what,
                status,
                output,
            } => write!(f, "{what} failed ({status}):\n{output}"),
            SetupError::NotListening { endpoint } => {
                write!(f, "moto server is not listening on {endpoint}")
            }
            SetupError::Unexpected { what, said } => write!(f, "{what}: {said}"),
            SetupError::Json(e) => write!(f, "moto's data is not JSON: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Io { source, .. } => Some(source),
            SetupError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// The pinned moto version (see the module docs).
pub const MOTO_VERSION: &str = "5.1.22";
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `target/moto-venv` of the workspace.
pub fn venv_dir() -> PathBuf {
    workspace().join("target").join("moto-venv")
}

fn marker(venv: &Path) -> PathBuf {
    venv.join(format!(".installed-moto-{MOTO_VERSION}"))
}

/// A lock directory: `mkdir` is atomic. A lock older than 15 minutes is
/// taken as left behind by a killed process.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> Result<DirLock, SetupError> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(DirLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(900));
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(SetupError::LockTimeout { path });
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => {
                    return Err(SetupError::io(format!(
                        "cannot create the lock {}",
                        path.display()
                    ))(e));
                }
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), SetupError> {
    let out = cmd
        .output()
        .map_err(SetupError::io(format!("{what}: cannot run it")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SetupError::Command {
            what: what.to_string(),
            status: out.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// Installs moto into the virtualenv unless it is there already.
pub fn install() -> Result<PathBuf, SetupError> {
    let venv = venv_dir();
    if marker(&venv).exists() {
        return Ok(venv);
    }
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent).map_err(SetupError::io("cannot create target/"))?;
    }
    let _lock = DirLock::acquire(venv.with_extension("lock"))?;
    if marker(&venv).exists() {
        return Ok(venv);
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv target/moto-venv (is python3 with venv installed?)",
    )?;
    run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("moto[server]=={MOTO_VERSION}")),
        &format!("pip install moto[server]=={MOTO_VERSION} (needs PyPI)"),
    )?;
    std::fs::write(marker(&venv), MOTO_VERSION)
        .map_err(SetupError::io("cannot write the install marker"))?;
    Ok(venv)
}

/// Starts a server in a Python process that stops when its standard input
/// closes (when this process exits, however it exits).
const SERVER: &str = "import sys\n\
from moto.server import ThreadedMotoServer\n\
s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n\
s.start()\n\
print('ready', flush=True)\n\
sys.stdin.read()\n\
s.stop()\n";

/// Starts a server that enforces IAM (see [`Moto::start_enforcing_iam`]):
/// moto lets the first `INITIAL_NO_AUTH_ACTION_COUNT` (3) requests through
/// unsigned, which create the administrator; then it prints its keys.
const IAM_SERVER: &str = "import sys\n\
import boto3\n\
from moto.server import ThreadedMotoServer\n\
s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n\
s.start()\n\
iam = boto3.client('iam', endpoint_url='http://127.0.0.1:' + sys.argv[1], region_name='us-east-1', aws_access_key_id='bootstrap', aws_secret_access_key='bootstrap')\n\
iam.create_user(UserName='admin')\n\
iam.put_user_policy(UserName='admin', PolicyName='all', PolicyDocument='{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}]}')\n\
k = iam.create_access_key(UserName='admin')['AccessKey']\n\
print('ready', k['AccessKeyId'], k['SecretAccessKey'], flush=True)\n\
sys.stdin.read()\n\
s.stop()\n";

/// Creates an IAM user with one inline policy and prints its access key,
/// as the administrator (argv: endpoint, admin key, admin secret, user name,
/// policy document).
const CREATE_USER: &str = "import sys\n\
import boto3\n\
iam = boto3.client('iam', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n\
iam.create_user(UserName=sys.argv[4])\n\
iam.put_user_policy(UserName=sys.argv[4], PolicyName='function', PolicyDocument=sys.argv[5])\n\
k = iam.create_access_key(UserName=sys.argv[4])['AccessKey']\n\
print(k['AccessKeyId'], k['SecretAccessKey'], flush=True)\n";

/// Access keys of an IAM user on a server that enforces IAM.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl Moto {
    /// Installs (first time) and starts a server on a free port.
    pub fn start() -> Result<Moto, SetupError> {
        Moto::spawn(SERVER, &[]).map(|(m, _)| m)
    }

    /// Starts a server that checks every request against IAM, as AWS does
    /// (moto's `INITIAL_NO_AUTH_ACTION_COUNT`): signed by a known access
    /// key, and allowed by that user's policies. Returns the server and the
    /// access key of an administrator (`Action: *`), for the set-up.
    ///
    /// What moto checks (5.1): the action of every request; the resource
    /// only for S3 (bucket and key ARNs) and SQS (queue ARNs), other
    /// services are checked against the resource `*`; of conditions only
    /// `StringEquals` on request values it collects (none for these
    /// services), so conditions are not enforced.
    pub fn start_enforcing_iam() -> Result<(Moto, AccessKey), SetupError> {
        let (moto, line) = Moto::spawn(IAM_SERVER, &[("INITIAL_NO_AUTH_ACTION_COUNT", "3")])?;
        let mut words = line.split_whitespace().skip(1);
        match (words.next(), words.next()) {
            (Some(id), Some(secret)) => Ok((
                moto,
                AccessKey {
                    id: id.to_string(),
                    secret: secret.to_string(),
                },
            )),
            _ => Err(SetupError::Unexpected {
                what: "the IAM-enforcing server gave no administrator's key".into(),
                said: format!("`{line}`"),
            }),
        }
    }

    /// Creates the IAM user `name` carrying exactly `policy` (a JSON policy
    /// document) and returns its access key.
    pub fn create_user(
        &self,
        admin: &AccessKey,
        name: &str,
        policy: &str,
    ) -> Result<AccessKey, SetupError> {
        let out = Command::new(venv_dir().join("bin").join("python"))
            .arg("-c")
            .arg(CREATE_USER)
            .args([&self.endpoint, &admin.id, &admin.secret, name, policy])
            .output()
            .map_err(SetupError::io(format!(
                "cannot run python to create the IAM user {name}"
            )))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        match (out.status.success(), words.next(), words.next()) {
            (true, Some(id), Some(secret)) => Ok(AccessKey {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            _ => Err(SetupError::Command {
                what: format!("creating the IAM user {name}"),
                status: out.status,
                output: format!("{text}{}", String::from_utf8_lossy(&out.stderr)),
            }),
        }
    }

    /// The SDK configuration for this endpoint with a user's access key.
    pub async fn sdk_config_as(&self, key: &AccessKey) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                key.id.clone(),
                key.secret.clone(),
                None,
                None,
                "moto-iam",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// Starts `script` (a Python server that prints `ready …` once it
    /// listens) with extra environment variables; returns the server and
    /// its `ready` line.
    fn spawn(script: &str, envs: &[(&str, &str)]) -> Result<(Moto, String), SetupError> {
        let venv = install()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(SetupError::io("no free port on 127.0.0.1"))?
            .port();
        let mut child = Command::new(venv.join("bin").join("python"))
            .arg("-c")
            .arg(script)
            .arg(port.to_string())
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(SetupError::io("cannot start moto server"))?;
        let stdout = child.stdout.take().ok_or_else(|| SetupError::Unexpected {
            what: "moto server".into(),
            said: "no standard output to read".into(),
        })?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        if read.is_err() || !line.starts_with("ready") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SetupError::Unexpected {
                what: "moto server did not start".into(),
                said: format!(
                    "`{}`; try `{} -c 'import moto.server'`",
                    line.trim(),
                    venv.join("bin").join("python").display()
                ),
            });
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(SetupError::NotListening { endpoint });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok((
            Moto {
                child,
                port,
                endpoint,
            },
            line.trim().to_string(),
        ))
    }

    /// The SDK configuration for this endpoint: region and static test
    /// credentials set (without them the SDK would ask the instance
    /// metadata service).
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await
    }

    /// `GET` a path of the server (e.g. `/moto-api/data.json`), as text.
    pub fn get(&self, path: &str) -> Result<String, SetupError> {
        let what = || format!("GET {path} of moto server");
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(SetupError::io(what()))?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(SetupError::io(what()))?;
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .map_err(SetupError::io(what()))?;
        match text.split_once("\r\n\r\n") {
            Some((_, body)) => Ok(body.to_string()),
            None => Err(SetupError::Unexpected {
                what: format!("{}: not an HTTP answer", what()),
                said: text,
            }),
        }
    }

    /// The mail SES recorded as sent: `(destinations, raw MIME)` of every
    /// raw message, from `ses.RawMessage` of `/moto-api/data.json`.
    ///
    /// moto serialises every backend for that page; while another test of
    /// the same binary writes to the server, the page can come back as an
    /// error instead of JSON. It is asked again a few times before that
    /// counts as a failure.
    pub fn sent_raw_mail(&self) -> Result<Vec<(Vec<String>, String)>, SetupError> {
        let mut attempt = 0;
        let data: serde_json::Value = loop {
            attempt += 1;
            match serde_json::from_str(&self.get("/moto-api/data.json")?) {
                Ok(data) => break data,
                Err(_) if attempt < 6 => {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e) => return Err(SetupError::Json(e)),
            }
        };
        let raw = data
            .pointer("/ses/RawMessage")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        Ok(raw
            .iter()
            .map(|m| {
                // moto lists the API's destinations and the `To` header's
                // mailboxes: keep each address once.
                let mut to: Vec<String> = Vec::new();
                for d in m
                    .get("destinations")
                    .and_then(|d| d.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str())
                {
                    let address = match (d.find('<'), d.rfind('>')) {
                        (Some(a), Some(b)) if a < b => d.get(a + 1..b).unwrap_or(d),
                        _ => d,
                    }
                    .trim()
                    .to_ascii_lowercase();
                    if !to.contains(&address) {
                        to.push(address);
                    }
                }
                let body = m
                    .get("raw_data")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_string();
                (to, body)
            })
            .collect())
    }
}

/// The server shared by the tests of one test binary. Panics (failing the
/// test) with the reason when it cannot be started.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| match Moto::start() {
        Ok(m) => m,
        Err(reason) => {
            panic!("the local AWS endpoint (moto server) could not be started:\n{reason}")
        }
    })
}

/// A server that enforces IAM, and its administrator's access key.
pub struct IamServer {
    pub moto: Moto,
    pub admin: AccessKey,
}

/// The IAM-enforcing server shared by the tests of one test binary (see
/// [`Moto::start_enforcing_iam`]). Panics (failing the test) with the
/// reason when it cannot be started.
pub fn iam_moto() -> &'static IamServer {
    static SERVER: OnceLock<IamServer> = OnceLock::new();
    SERVER.get_or_init(|| match Moto::start_enforcing_iam() {
        Ok((moto, admin)) => IamServer { moto, admin },
        Err(reason) => panic!("the IAM-enforcing moto server could not be started:\n{reason}"),
    })
}

/// The policy folder of the repository.
pub fn policy_dir() -> PathBuf {
    workspace().join("policy")
}
