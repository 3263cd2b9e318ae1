#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The delivery protocol over the real outbox when it cannot be written:
//! a file where the outbox folder should be stops the run (the whole
//! service failed), burns no step, and once the folder can be written a
//! run sends every message once.

use collect_delivery::delivery::RunError;
use collect_delivery::ledger::MessageStatus;
use collect_delivery::mailer::Outbox;
use collect_engine::domain::ActionStatus;
use collect_testkit::Harness;
use collect_testkit::book::{Clock, Env, MemoryHarness, day};
use collect_testkit::conformance::{DAY, load_book};

fn emls(dir: &std::path::Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .count()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

#[test]
fn a_file_in_the_way_of_the_outbox_stops_the_run_and_burns_nothing() {
    pollster::block_on(async {
        let h = MemoryHarness::default();
        load_book(&h).await;
        let env = Env::new();
        let clock = Clock::at(day(DAY));
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        std::fs::write(&dir, "a file, not a folder").unwrap();
        let outbox = Outbox::new(&dir);

        let first = env.run(&h, &outbox, &clock, day(DAY), None).await;
        let Err(e @ RunError::MailService { .. }) = &first else {
            panic!("the run did not fail: {first:?}")
        };
        let said = e.to_string();
        assert!(
            said.contains("the outbox cannot be written at")
                && said.contains("nothing more was sent")
                && said.contains("the 3 message(s) not sent stay planned"),
            "{said}"
        );
        // Nothing burned: every message and action waits, none failed.
        assert!(
            h.messages()
                .await
                .iter()
                .all(|m| m.status == MessageStatus::Planned),
            "{:?}",
            h.messages().await
        );
        assert!(
            h.actions()
                .await
                .iter()
                .all(|a| !matches!(a.status, ActionStatus::Failed | ActionStatus::Sending)),
        );

        // Healthy again: everything goes out once, nothing twice.
        std::fs::remove_file(&dir).unwrap();
        let second = env.run(&h, &outbox, &clock, day(DAY), None).await.unwrap();
        assert_eq!(second.sent.len(), 3, "{second:?}");
        assert_eq!(emls(&dir), 3);
        let next = day(DAY).succ_opt().unwrap();
        let third = env.run(&h, &outbox, &clock, next, None).await.unwrap();
        assert!(third.sent.is_empty(), "{third:?}");
        assert_eq!(emls(&dir), 3);
    });
}
