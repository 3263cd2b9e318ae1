//! The preflight: is this stack ready to send dunning mail? Run by the
//! sweep coordinator before each day's sweep (a blocking finding stops the
//! day: nothing is enqueued, nothing sent, the invocation fails and its
//! alarm fires) and on demand (`{"preflight": true}` to the coordinator:
//! README, "Preflight"); each worker checks the account again at its
//! start, as it reads its share of the rate and quota ([`super::pacing`]).
//!
//! It checks, each finding saying what to fix:
//! - the sender identity (`SenderIdentity`) exists in SES, is verified and
//!   covers the `From:` address (`SenderAddress`), with DKIM
//!   (`GetEmailIdentity`);
//! - the account (`GetAccount`): production access or the sandbox,
//!   sending enabled, SES's enforcement status, and the daily quota left
//!   against the day's expected volume;
//! - the bucket and the policy bundle (present and verified) and the risk
//!   model (present, or the fallback scorer until the first training).
//!
//! The judging is plain functions over what SES answered ([`SesAccount`],
//! [`IdentityStatus`]), so tests give it recorded answers; the reading is
//! [`read_account`] and [`read_identity`].

use serde::Serialize;

use super::artifacts::Artifacts;
use super::config::{self, env_opt};
use super::error::{AwsError, ConfigError, Service};
use super::pacing::{SendLimits, SesQuota};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The sweep must not send until it is fixed.
    Blocking,
    /// Works, but needs a look (it may stop mail later or send less).
    Warning,
    Ok,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What was checked: `sender identity`, `sandbox`, `sending`, …
    pub check: &'static str,
    pub severity: Severity,
    /// What was found, in a sentence.
    pub found: String,
    /// What to do about it (blocking and warning findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, found: String) -> Finding {
        Finding {
            check,
            severity: Severity::Ok,
            found,
            fix: None,
        }
    }

    fn problem(check: &'static str, severity: Severity, found: String, fix: String) -> Finding {
        Finding {
            check,
            severity,
            found,
            fix: Some(fix),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Blocking => "BLOCKING",
            Severity::Warning => "warning",
            Severity::Ok => "ok",
        };
        write!(f, "[{tag}] {}: {}", self.check, self.found)?;
        if let Some(fix) = &self.fix {
            write!(f, " Fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every finding of one preflight.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Preflight {
    /// No blocking finding: the sweep may send.
    pub ready: bool,
    pub findings: Vec<Finding>,
}

impl Preflight {
    pub fn new(findings: Vec<Finding>) -> Preflight {
        Preflight {
            ready: !findings.iter().any(|f| f.severity == Severity::Blocking),
            findings,
        }
    }

    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Blocking)
    }
}

/// A preflight that found the stack not ready to send: the sweep stops
/// before it records or sends anything.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the preflight found the stack not ready to send; nothing was sent: {}", list(.0))]
pub struct NotReady(pub Preflight);

fn list(p: &Preflight) -> String {
    p.blocking()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `GetAccount` says of the account (in the function's region).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SesAccount {
    pub production_access: bool,
    pub sending_enabled: bool,
    /// `HEALTHY`, `PROBATION` or `SHUTDOWN`.
    pub enforcement_status: Option<String>,
    pub quota: SesQuota,
}

/// What `GetEmailIdentity` says of the sender identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityStatus {
    /// `SUCCESS`, `PENDING`, `FAILED`, `TEMPORARY_FAILURE`, `NOT_STARTED`.
    pub verification_status: Option<String>,
    /// DKIM's status (`SUCCESS` when the domain signs).
    pub dkim_status: Option<String>,
}

/// Reads the account with `GetAccount`.
pub async fn read_account(client: &aws_sdk_sesv2::Client) -> Result<SesAccount, AwsError> {
    let out = client
        .get_account()
        .send()
        .await
        .map_err(|e| AwsError::sdk(Service::Ses, "GetAccount", e))?;
    let quota = out.send_quota();
    Ok(SesAccount {
        production_access: out.production_access_enabled(),
        sending_enabled: out.sending_enabled(),
        enforcement_status: out.enforcement_status().map(str::to_string),
        quota: SesQuota {
            max_send_rate: quota.map_or(0.0, |q| q.max_send_rate()),
            max_24_hour_send: quota.map_or(0.0, |q| q.max24_hour_send()),
            sent_last_24_hours: quota.map_or(0.0, |q| q.sent_last24_hours()),
        },
    })
}

/// Reads an identity with `GetEmailIdentity`; `None` when SES has no such
/// identity in this account and region.
pub async fn read_identity(
    client: &aws_sdk_sesv2::Client,
    identity: &str,
) -> Result<Option<IdentityStatus>, AwsError> {
    match client
        .get_email_identity()
        .email_identity(identity)
        .send()
        .await
    {
        Ok(out) => Ok(Some(IdentityStatus {
            verification_status: out.verification_status().map(|s| s.as_str().to_string()),
            dkim_status: out
                .dkim_attributes()
                .and_then(|d| d.status())
                .map(|s| s.as_str().to_string()),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::sdk(Service::Ses, "GetEmailIdentity", e)),
    }
}

/// Where the account's state and limits are read.
#[derive(Debug, Clone)]
pub enum AccountSource {
    /// `GetAccount` on SES (Lambda).
    Ses(aws_sdk_sesv2::Client),
    /// A recorded answer (tests: moto does not implement `GetAccount`).
    Fixed(SesAccount),
    /// No account to read: no limits, nothing to judge (tests of other things).
    Unlimited,
}

impl AccountSource {
    /// The account; `None` for [`AccountSource::Unlimited`].
    pub async fn read(&self) -> Result<Option<SesAccount>, AwsError> {
        match self {
            AccountSource::Ses(client) => read_account(client).await.map(Some),
            AccountSource::Fixed(a) => Ok(Some(a.clone())),
            AccountSource::Unlimited => Ok(None),
        }
    }
}

/// Whether `identity` (a domain, or an address) covers the address
/// `sender`: the same address, or the sender's domain is the identity or a
/// subdomain of it.
pub fn identity_covers(identity: &str, sender: &str) -> bool {
    let identity = identity.trim().to_ascii_lowercase();
    let sender = sender.trim().to_ascii_lowercase();
    if identity.contains('@') {
        return identity == sender;
    }
    let Some((_, domain)) = sender.rsplit_once('@') else {
        return false;
    };
    domain == identity || domain.ends_with(&format!(".{identity}"))
}

/// The sender identity's findings.
pub fn judge_identity(
    identity: &str,
    sender: &str,
    status: Option<&IdentityStatus>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if !identity_covers(identity, sender) {
        out.push(Finding::problem(
            "sender identity",
            Severity::Blocking,
            format!(
                "the From address `{sender}` is not covered by the SES identity `{identity}`: \
                 SES refuses its mail (and the worker's IAM policy allows sending as `{identity}` only)"
            ),
            format!(
                "set the stack parameter SenderIdentity to the domain of `{sender}` (or the address \
                 itself), verified in SES, or SenderAddress to an address of `{identity}`; then deploy again"
            ),
        ));
    }
    match status {
        None => out.push(Finding::problem(
            "sender identity",
            Severity::Blocking,
            format!("SES has no identity `{identity}` in this account and region"),
            format!(
                "create and verify it: `aws sesv2 create-email-identity --email-identity {identity}`, \
                 then publish the DKIM records it returns in your DNS (README, \"Deploy to AWS\")"
            ),
        )),
        Some(s) => {
            let verified = s.verification_status.as_deref() == Some("SUCCESS");
            if verified {
                out.push(Finding::ok(
                    "sender identity",
                    format!("`{identity}` is verified and covers `{sender}`"),
                ));
            } else {
                out.push(Finding::problem(
                    "sender identity",
                    Severity::Blocking,
                    format!(
                        "`{identity}` is not verified (verification status {})",
                        s.verification_status.as_deref().unwrap_or("unknown")
                    ),
                    "publish the DNS records SES gave for the identity (a domain: its DKIM CNAME \
                     records; an address: click the link SES mailed to it) and wait until the SES \
                     console shows it verified"
                        .to_string(),
                ));
            }
            if !identity.contains('@') && s.dkim_status.as_deref() != Some("SUCCESS") {
                out.push(Finding::problem(
                    "dkim",
                    Severity::Warning,
                    format!(
                        "DKIM of `{identity}` is not in place (status {}): mail is more likely to be \
                         filtered as spam",
                        s.dkim_status.as_deref().unwrap_or("unknown")
                    ),
                    "publish the three DKIM CNAME records of the identity in your DNS".to_string(),
                ));
            }
        }
    }
    out
}

/// What the account judge needs besides the account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountCheck {
    /// Workers sending at once (`WORKER_CONCURRENCY`).
    pub workers: u32,
    /// Percent of the daily quota kept in reserve.
    pub margin_percent: u32,
    /// Messages expected today, when known (`EXPECTED_DAILY_MESSAGES`).
    pub expected: Option<u64>,
    /// Shadow mode: nothing is sent, so what would block sending is a warning.
    pub shadow: bool,
}

impl AccountCheck {
    /// `SHADOW_MODE` (default false), `WORKER_CONCURRENCY` (default 8),
    /// `SES_QUOTA_MARGIN_PERCENT` (default 10), `EXPECTED_DAILY_MESSAGES`
    /// (unset: not compared).
    pub fn from_env() -> Result<AccountCheck, ConfigError> {
        let expected = env_opt("EXPECTED_DAILY_MESSAGES")
            .map(|_| config::number("EXPECTED_DAILY_MESSAGES", 0, 0, u32::MAX))
            .transpose()?
            .map(u64::from);
        Ok(AccountCheck {
            shadow: config::switch("SHADOW_MODE")?,
            workers: config::number("WORKER_CONCURRENCY", 8, 1, 1000)?,
            margin_percent: config::number("SES_QUOTA_MARGIN_PERCENT", 10, 0, 90)?,
            expected,
        })
    }
}

/// What the coordinator's preflight reads from its environment.
#[derive(Debug, Clone)]
pub struct PreflightSettings {
    /// `SENDER_ADDRESS`
    pub sender: String,
    /// `SENDER_IDENTITY`
    pub identity: String,
    pub check: AccountCheck,
}

impl PreflightSettings {
    pub fn from_env() -> Result<PreflightSettings, ConfigError> {
        Ok(PreflightSettings {
            sender: config::env("SENDER_ADDRESS")?,
            identity: config::env("SENDER_IDENTITY")?,
            check: AccountCheck::from_env()?,
        })
    }
}

/// The account's findings.
pub fn judge_account(a: &SesAccount, check: &AccountCheck) -> Vec<Finding> {
    let mut out = Vec::new();
    let stops = if check.shadow {
        Severity::Warning
    } else {
        Severity::Blocking
    };
    let in_shadow = if check.shadow {
        " (shadow mode sends nothing; this blocks the first normal sweep)"
    } else {
        ""
    };
    if a.production_access {
        out.push(Finding::ok(
            "sandbox",
            "the account has production access".to_string(),
        ));
    } else {
        out.push(Finding::problem(
            "sandbox",
            stops,
            format!(
                "SES is in the sandbox: only verified addresses receive mail, at most {} messages a day{in_shadow}",
                a.quota.max_24_hour_send
            ),
            "request production access: SES console, Account dashboard, \"Request production \
             access\" (or `aws sesv2 put-account-details --production-access-enabled ...`), \
             describing dunning mail to your own customers; AWS answers within a day"
                .to_string(),
        ));
    }
    if a.sending_enabled {
        out.push(Finding::ok("sending", "sending is enabled".to_string()));
    } else {
        out.push(Finding::problem(
            "sending",
            stops,
            format!("sending is paused for the whole account (SendingEnabled is false){in_shadow}"),
            "find why in the SES console (Reputation metrics; a pause by AWS is explained in a \
             message to the account's root address), fix the cause, then \
             `aws sesv2 put-account-sending-attributes --sending-enabled`"
                .to_string(),
        ));
    }
    match a.enforcement_status.as_deref() {
        Some("SHUTDOWN") => out.push(Finding::problem(
            "enforcement",
            stops,
            format!("SES has shut the account down for sending{in_shadow}"),
            "contact AWS Support from the SES console's Reputation page; no mail goes out until \
             AWS lifts it"
                .to_string(),
        )),
        Some("PROBATION") => out.push(Finding::problem(
            "enforcement",
            Severity::Warning,
            "SES has put the account on probation (bounce or complaint rate too high): it may \
             pause sending"
                .to_string(),
            "bring the bounce rate under 5% and complaints under 0.1% (the SesBounceRate and \
             SesComplaintRate alarms watch them): clean the addresses of bounced customers in the ERP"
                .to_string(),
        )),
        _ => {}
    }
    let limits = SendLimits::share(&a.quota, check.workers, check.margin_percent);
    let usable = a.quota.usable(check.margin_percent);
    let figures = format!(
        "{} of {} messages sent in the last 24 hours, {} a second; {usable} may still go today \
         (keeping {}% in reserve), {} a second for each of {} workers",
        a.quota.sent_last_24_hours,
        a.quota.max_24_hour_send,
        a.quota.max_send_rate,
        check.margin_percent,
        limits.per_second,
        check.workers.max(1)
    );
    let raise = "raise the quota: Service Quotas console, Amazon Simple Email Service, \
                 \"Sending quota\" (and \"Maximum send rate\"), or the SES console's Account \
                 dashboard; what is not sent today stays planned for the next sweep";
    match check.expected {
        _ if usable == 0 => out.push(Finding::problem(
            "quota",
            Severity::Warning,
            format!("the daily quota is used up: nothing will be sent today ({figures})"),
            raise.to_string(),
        )),
        Some(expected) if expected > usable => out.push(Finding::problem(
            "quota",
            Severity::Warning,
            format!(
                "about {expected} messages are expected today, more than the quota left ({figures})"
            ),
            raise.to_string(),
        )),
        _ => out.push(Finding::ok("quota", figures)),
    }
    out
}

/// The bucket, the bundle and the model.
pub async fn judge_artifacts(artifacts: &Artifacts) -> Vec<Finding> {
    let mut out = Vec::new();
    match artifacts.current_bundle().await {
        Ok(bundle) => out.push(Finding::ok(
            "policy bundle",
            format!(
                "the current bundle of s3://{} is present and matches its manifest (revision {})",
                artifacts.bucket(),
                collect_delivery::revision::of_manifest(&bundle.manifest)
            ),
        )),
        Err(AwsError::NoBundle(e)) => out.push(Finding::problem(
            "policy bundle",
            Severity::Blocking,
            e.to_string(),
            "publish the policy from CI (README, \"Publish the policy from CI\")".to_string(),
        )),
        Err(e) => out.push(Finding::problem(
            "policy bundle",
            Severity::Blocking,
            format!("the current bundle could not be read or verified: {e}"),
            format!(
                "check that the bucket `{}` exists and the function may read `bundles/`, \
                 then publish the bundle again from CI",
                artifacts.bucket()
            ),
        )),
    }
    match artifacts.current_model().await {
        Ok(Some((pointer, _))) => out.push(Finding::ok(
            "risk model",
            format!("the current model is `{}`", pointer.key),
        )),
        Ok(None) => out.push(Finding::problem(
            "risk model",
            Severity::Warning,
            "no model is promoted yet: the sweep scores with each customer's prior late rate"
                .to_string(),
            "nothing, on a new stack: the weekly training promotes the first model once there is \
             history (or invoke the train function once)"
                .to_string(),
        )),
        Err(e) => out.push(Finding::problem(
            "risk model",
            Severity::Blocking,
            format!("the current model could not be read: {e}"),
            "check the function may read `models/`; train again to replace a damaged model"
                .to_string(),
        )),
    }
    out
}

/// The whole preflight, as the coordinator runs it.
#[derive(Debug, Clone)]
pub struct Checker {
    pub ses: aws_sdk_sesv2::Client,
    /// Where the account is read (SES itself on Lambda).
    pub account: AccountSource,
    pub artifacts: Artifacts,
    /// `SENDER_ADDRESS`
    pub sender: String,
    /// `SENDER_IDENTITY`
    pub identity: String,
    pub check: AccountCheck,
}

impl Checker {
    pub async fn run(&self) -> Preflight {
        let mut findings = Vec::new();
        match read_identity(&self.ses, &self.identity).await {
            Ok(status) => findings.extend(judge_identity(
                &self.identity,
                &self.sender,
                status.as_ref(),
            )),
            Err(e) => findings.push(unreadable("sender identity", &e)),
        }
        match self.account.read().await {
            Ok(Some(account)) => findings.extend(judge_account(&account, &self.check)),
            Ok(None) => {}
            Err(e) => findings.push(unreadable("account", &e)),
        }
        findings.extend(judge_artifacts(&self.artifacts).await);
        Preflight::new(findings)
    }
}

fn unreadable(check: &'static str, e: &AwsError) -> Finding {
    Finding::problem(
        check,
        Severity::Blocking,
        format!("SES could not be asked: {e}"),
        "check the function's role may call ses:GetAccount and ses:GetEmailIdentity \
         (infra/template.yaml) and that SES is offered in the stack's region"
            .to_string(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    //! The judging on recorded answers of `GetAccount` (moto does not
    //! implement it) and `GetEmailIdentity` (moto's is tested end to end in
    //! `tests/tests/aws_e2e.rs`).
    use super::*;

    fn production() -> SesAccount {
        SesAccount {
            production_access: true,
            sending_enabled: true,
            enforcement_status: Some("HEALTHY".into()),
            quota: SesQuota {
                max_send_rate: 14.0,
                max_24_hour_send: 50_000.0,
                sent_last_24_hours: 120.0,
            },
        }
    }

    fn check() -> AccountCheck {
        AccountCheck {
            workers: 8,
            margin_percent: 10,
            expected: None,
            shadow: false,
        }
    }

    fn verified() -> IdentityStatus {
        IdentityStatus {
            verification_status: Some("SUCCESS".into()),
            dkim_status: Some("SUCCESS".into()),
        }
    }

    #[test]
    fn a_healthy_production_account_with_a_verified_domain_is_ready() {
        let mut f = judge_identity("example.com", "ar@example.com", Some(&verified()));
        f.extend(judge_account(&production(), &check()));
        let p = Preflight::new(f);
        assert!(p.ready, "{:#?}", p.findings);
        assert!(p.findings.iter().all(|f| f.severity == Severity::Ok));
        let quota = p.findings.iter().find(|f| f.check == "quota").unwrap();
        assert!(
            quota.found.contains("44880 may still go today"),
            "{}",
            quota.found
        );
    }

    #[test]
    fn the_sandbox_blocks_and_says_how_to_leave_it() {
        let a = SesAccount {
            production_access: false,
            quota: SesQuota {
                max_send_rate: 1.0,
                max_24_hour_send: 200.0,
                sent_last_24_hours: 0.0,
            },
            ..production()
        };
        let p = Preflight::new(judge_account(&a, &check()));
        assert!(!p.ready);
        let f = p.blocking().next().unwrap();
        assert_eq!(f.check, "sandbox");
        assert!(
            f.found.contains("only verified addresses receive mail"),
            "{f}"
        );
        assert!(
            f.fix.as_deref().unwrap().contains("Request production"),
            "{f}"
        );
        // In shadow mode nothing is sent: a warning, not a stop.
        let shadow = Preflight::new(judge_account(
            &a,
            &AccountCheck {
                shadow: true,
                ..check()
            },
        ));
        assert!(shadow.ready);
        assert!(
            shadow.findings[0]
                .found
                .contains("blocks the first normal sweep")
        );
    }

    #[test]
    fn paused_sending_and_a_shutdown_block_probation_warns() {
        let paused = SesAccount {
            sending_enabled: false,
            ..production()
        };
        let p = Preflight::new(judge_account(&paused, &check()));
        assert_eq!(
            p.blocking().map(|f| f.check).collect::<Vec<_>>(),
            ["sending"]
        );
        let shut = SesAccount {
            enforcement_status: Some("SHUTDOWN".into()),
            ..production()
        };
        assert!(!Preflight::new(judge_account(&shut, &check())).ready);
        let probation = SesAccount {
            enforcement_status: Some("PROBATION".into()),
            ..production()
        };
        let p = Preflight::new(judge_account(&probation, &check()));
        assert!(p.ready);
        assert!(
            p.findings
                .iter()
                .any(|f| f.check == "enforcement" && f.severity == Severity::Warning)
        );
    }

    #[test]
    fn a_quota_short_of_the_day_warns_with_the_figures() {
        let a = SesAccount {
            quota: SesQuota {
                max_send_rate: 14.0,
                max_24_hour_send: 1000.0,
                sent_last_24_hours: 850.0,
            },
            ..production()
        };
        let p = Preflight::new(judge_account(
            &a,
            &AccountCheck {
                expected: Some(400),
                ..check()
            },
        ));
        let f = p.findings.iter().find(|f| f.check == "quota").unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.found.contains("about 400 messages are expected today"),
            "{f}"
        );
        assert!(f.found.contains("50 may still go today"), "{f}");
        assert!(f.fix.as_deref().unwrap().contains("stays planned"), "{f}");
    }

    #[test]
    fn the_identity_must_exist_be_verified_and_cover_the_sender() {
        assert!(identity_covers("example.com", "ar@example.com"));
        assert!(identity_covers("example.com", "AR@Billing.Example.com"));
        assert!(identity_covers("ar@example.com", "ar@example.com"));
        assert!(!identity_covers("example.com", "ar@badexample.com"));
        assert!(!identity_covers("ar@example.com", "other@example.com"));

        let missing = Preflight::new(judge_identity("example.com", "ar@example.com", None));
        let f = missing.blocking().next().unwrap();
        assert!(
            f.fix
                .as_deref()
                .unwrap()
                .contains("create-email-identity --email-identity example.com")
        );

        let pending = IdentityStatus {
            verification_status: Some("PENDING".into()),
            dkim_status: Some("PENDING".into()),
        };
        let p = Preflight::new(judge_identity(
            "example.com",
            "ar@example.com",
            Some(&pending),
        ));
        assert!(!p.ready);
        assert!(
            p.findings
                .iter()
                .any(|f| f.check == "dkim" && f.severity == Severity::Warning)
        );

        let mismatch = Preflight::new(judge_identity(
            "example.com",
            "ar@example.org",
            Some(&verified()),
        ));
        let f = mismatch.blocking().next().unwrap();
        assert!(
            f.found
                .contains("`ar@example.org` is not covered by the SES identity `example.com`"),
            "{f}"
        );
        let text = NotReady(mismatch.clone()).to_string();
        assert!(text.starts_with("the preflight found the stack not ready to send; nothing was sent: [BLOCKING] sender identity"), "{text}");
    }
}
