//! Broker lifecycle tests, each run on SQLite and on PostgreSQL.
//!
//! PostgreSQL: `OTGATE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`)
//! names a server; every test creates its own database there and drops it afterwards. Without
//! the variable the PostgreSQL variants fail when `OTGATE_REQUIRE_PEERS=1` (CI) and are skipped
//! with a message otherwise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod access;
mod alerts;
mod harness;
mod identity;
mod requests;
mod sessions;

/// Runs each scenario on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let h = crate::harness::harness(crate::harness::Backend::Sqlite).await.unwrap();
                crate::$module::$name(&h).await;
                h.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(h) = crate::harness::harness(crate::harness::Backend::Postgres).await else { return };
                crate::$module::$name(&h).await;
                h.finish().await;
            })*
        }
    };
}

on_both!(
    requests::two_engineers_turn_a_level_one_request_into_a_grant,
    requests::self_approval_and_double_approval_are_refused,
    requests::bad_requests_are_refused_and_store_nothing,
    requests::organisations_decide_who_may_ask,
    requests::deny_and_withdraw_end_pending_requests,
    requests::the_clock_activates_and_expires_grants,
    requests::concurrent_approvals_issue_one_grant,
    requests::changing_the_inventory_changes_who_may_ask,
    access::revocation_is_stored_and_seen_by_the_gateway,
    access::quarantine_blocks_vendors_and_assets,
    access::credentials_are_bound_to_the_grant,
    access::vault_keeps_secrets_sealed,
    identity::login_needs_password_totp_and_survives_replay,
    identity::events_are_visible_by_zone,
    identity::admins_change_roles_and_disable_accounts,
    identity::single_sign_on_enrols_a_second_factor,
    sessions::recordings_are_indexed_searched_and_expired,
    alerts::alerts_are_stored_listed_and_judged,
    alerts::the_detector_revokes_and_quarantines_as_the_system,
    alerts::detector_models_are_stored,
);

/// Credentials expiring needs a short token lifetime, so it gets its own harness.
mod expiry {
    use std::time::Duration;

    use crate::harness::{Backend, harness_with};

    const TTL: Duration = Duration::from_secs(2);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_expired_credentials_are_refused() {
        let h = harness_with(Backend::Sqlite, TTL).await.unwrap();
        crate::identity::expired_credentials_are_refused(&h).await;
        h.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_expired_credentials_are_refused() {
        let Some(h) = harness_with(Backend::Postgres, TTL).await else {
            return;
        };
        crate::identity::expired_credentials_are_refused(&h).await;
        h.finish().await;
    }
}
