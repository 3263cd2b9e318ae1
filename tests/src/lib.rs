//! Test support: a local AWS endpoint (moto server) that `cargo test`
//! starts by itself, and the resources the functions need on it.
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
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use collect_aws::config::Clients;
use collect_aws::keys;

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
    fn acquire(path: PathBuf) -> Result<DirLock, String> {
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
                        return Err(format!(
                            "timed out waiting for the lock {}; remove it if no test is running",
                            path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(format!("cannot create the lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run it: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Installs moto into the virtualenv unless it is there already.
pub fn install() -> Result<PathBuf, String> {
    let venv = venv_dir();
    if marker(&venv).exists() {
        return Ok(venv);
    }
    if let Some(parent) = venv.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create target/: {e}"))?;
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
        .map_err(|e| format!("cannot write the install marker: {e}"))?;
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
    pub fn start() -> Result<Moto, String> {
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
    pub fn start_enforcing_iam() -> Result<(Moto, AccessKey), String> {
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
            _ => Err(format!("the IAM-enforcing server said `{line}`")),
        }
    }

    /// Creates the IAM user `name` carrying exactly `policy` (a JSON policy
    /// document) and returns its access key.
    pub fn create_user(
        &self,
        admin: &AccessKey,
        name: &str,
        policy: &str,
    ) -> Result<AccessKey, String> {
        let out = Command::new(venv_dir().join("bin").join("python"))
            .arg("-c")
            .arg(CREATE_USER)
            .args([&self.endpoint, &admin.id, &admin.secret, name, policy])
            .output()
            .map_err(|e| format!("cannot run python to create the IAM user {name}: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        match (out.status.success(), words.next(), words.next()) {
            (true, Some(id), Some(secret)) => Ok(AccessKey {
                id: id.to_string(),
                secret: secret.to_string(),
            }),
            _ => Err(format!(
                "creating the IAM user {name} failed:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )),
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
    fn spawn(script: &str, envs: &[(&str, &str)]) -> Result<(Moto, String), String> {
        let venv = install()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
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
            .map_err(|e| format!("cannot start moto server: {e}"))?;
        let stdout = child.stdout.take().ok_or("moto server has no stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        if read.is_err() || !line.starts_with("ready") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "moto server did not start (said `{}`); try `{} -c 'import moto.server'`",
                line.trim(),
                venv.join("bin").join("python").display()
            ));
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("moto server is not listening on {endpoint}"));
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
    pub fn get(&self, path: &str) -> Result<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        match text.split_once("\r\n\r\n") {
            Some((_, body)) => Ok(body.to_string()),
            None => Err(format!("not an HTTP answer: {text}")),
        }
    }

    /// The mail SES recorded as sent: `(destinations, raw MIME)` of every
    /// raw message, from `ses.RawMessage` of `/moto-api/data.json`.
    pub fn sent_raw_mail(&self) -> Result<Vec<(Vec<String>, String)>, String> {
        let data: serde_json::Value =
            serde_json::from_str(&self.get("/moto-api/data.json")?).map_err(|e| e.to_string())?;
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

/// The names of one test's resources, unique on the shared server.
#[derive(Debug, Clone)]
pub struct Names {
    pub table: String,
    pub bucket: String,
    pub shard_queue: String,
    pub dead_letter_queue: String,
    pub configuration_set: String,
    pub secret: String,
    pub sender: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = format!("{prefix}-{}-{n}", std::process::id());
        Names {
            table: format!("{id}-table"),
            bucket: format!("{id}-bucket").to_ascii_lowercase(),
            shard_queue: format!("{id}-shards"),
            dead_letter_queue: format!("{id}-dead-letters"),
            configuration_set: format!("{id}-mail"),
            secret: format!("{id}-pay-link-key"),
            sender: "receivables@supplier.example".to_string(),
        }
    }
}

/// Resources created on the endpoint, as `infra/template.yaml` declares them.
pub struct Stack {
    pub clients: Clients,
    pub names: Names,
    pub shard_queue_url: String,
    pub dead_letter_queue_url: String,
}

/// Creates the table (keys, the sparse GSI, TTL), the versioned bucket,
/// the queues, the SES identity and configuration set, and the pay-link secret.
pub async fn stack(moto: &Moto, prefix: &str) -> Stack {
    stack_on(&moto.sdk_config().await, prefix).await
}

/// [`stack`] with the given SDK configuration (e.g. an administrator's
/// keys on a server that enforces IAM).
pub async fn stack_on(config: &SdkConfig, prefix: &str) -> Stack {
    let clients = Clients::new(config);
    let names = Names::new(prefix);
    create_table(&clients.dynamodb, &names.table).await;
    clients
        .s3
        .create_bucket()
        .bucket(&names.bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket: {e:?}"));
    clients
        .s3
        .put_bucket_versioning()
        .bucket(&names.bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutBucketVersioning: {e:?}"));
    let queue = |name: String| {
        let sqs = clients.sqs.clone();
        async move {
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("CreateQueue: {e:?}"))
                .queue_url
                .unwrap_or_default()
        }
    };
    let shard_queue_url = queue(names.shard_queue.clone()).await;
    let dead_letter_queue_url = queue(names.dead_letter_queue.clone()).await;
    clients
        .ses
        .create_email_identity()
        .email_identity(&names.sender)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateEmailIdentity: {e:?}"));
    clients
        .ses
        .create_configuration_set()
        .configuration_set_name(&names.configuration_set)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateConfigurationSet: {e:?}"));
    clients
        .secrets
        .create_secret()
        .name(&names.secret)
        .secret_string("0123456789abcdef0123456789abcdef0123456789abcdef")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret: {e:?}"));
    Stack {
        clients,
        names,
        shard_queue_url,
        dead_letter_queue_url,
    }
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The table as the template declares it (`KEY_ATTRIBUTES`, `GSI1`, TTL).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    let mut create = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(keys::PK, KeyType::Hash))
        .key_schema(key(keys::SK, KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(keys::GSI1)
                .key_schema(key(keys::GSI1PK, KeyType::Hash))
                .key_schema(key(keys::GSI1SK, KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        );
    for (name, _) in keys::KEY_ATTRIBUTES {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    create
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateTable: {e:?}"));
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(keys::TTL)
                .enabled(true)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateTimeToLive: {e:?}"));
}

/// The policy folder of the repository.
pub fn policy_dir() -> PathBuf {
    workspace().join("policy")
}
