//! The `queue` Lambda function: the collections team's work queue on AWS.
//!
//! Wiring only. The pages, forms, roles and CSRF checks are `collect-web`'s
//! one router, the same `collect serve` runs locally; the work is
//! `collect_delivery::work` over the DynamoDB ledger. What lives here is
//! what only the Lambda has: who is signed in ([`claims`], [`signin`]),
//! when the next scheduled sweep runs ([`schedule`]), and the translation
//! of API Gateway's HTTP API events to the router's requests.

pub mod app;
pub mod backend;
pub mod claims;
pub mod schedule;
pub mod signin;
pub mod start;
