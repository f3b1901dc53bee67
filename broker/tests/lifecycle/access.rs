//! Revocation, quarantine, credentials bound to grants, and the vault.

use std::time::Duration;

use otgate_broker::{
    AccessRefusal, BrokerError, CredentialKind, NewCredential, NewQuarantine, RequestStatus, Secret,
};
use otgate_policy::QuarantineSubject;
use time::OffsetDateTime;

use crate::harness::*;

pub(crate) async fn revocation_is_stored_and_seen_by_the_gateway(h: &Harness) {
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let mut live = h.broker.subscribe();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let pending = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let not_yet = h
        .broker
        .revoke_grant(&user("eng2"), pending.id, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(not_yet, BrokerError::Conflict(ref m) if m.contains("deny it")),
        "{not_yet}"
    );
    let vendor_try = h
        .broker
        .revoke_grant(&user("vendor1"), request.id, "x")
        .await
        .unwrap_err();
    assert!(matches!(vendor_try, BrokerError::Forbidden(_)));
    let revoked = h
        .broker
        .revoke_grant(&user("eng2"), request.id, "suspicious login")
        .await
        .unwrap();
    assert_eq!(revoked.status, RequestStatus::Revoked);
    match h
        .broker
        .access(request.id, OffsetDateTime::now_utc())
        .await
        .unwrap()
    {
        Err(AccessRefusal::Revoked { by, reason, .. }) => {
            assert_eq!(by, "eng2");
            assert_eq!(reason, "suspicious login");
        }
        other => panic!("{other:?}"),
    }
    let again = h
        .broker
        .revoke_grant(&user("eng2"), request.id, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(again, BrokerError::Conflict(ref m) if m.contains("already revoked")),
        "{again}"
    );
    // The bus carried the revocation, after the events before it.
    let mut seen = Vec::new();
    while let Ok(Ok(event)) = tokio::time::timeout(Duration::from_millis(200), live.recv()).await {
        seen.push(event.event.kind.name());
    }
    assert!(seen.contains(&"grant_revoked"), "{seen:?}");
    // Every live grant of a vendor at once.
    let a = h.request("vendor1", "ews-1", "1h").await.unwrap();
    h.broker.approve(&user("eng2"), a.id).await.unwrap();
    let b = h.request("vendor1", "plc-7", "1h").await.unwrap();
    h.broker.approve(&user("eng1"), b.id).await.unwrap();
    h.broker.approve(&user("eng2"), b.id).await.unwrap();
    let outsider = h
        .broker
        .revoke_vendor(&user("eng3"), &"vendor1".parse().unwrap(), "x")
        .await;
    assert!(
        matches!(outsider, Err(BrokerError::Forbidden(ref m)) if m.contains("cell-a")),
        "an engineer of cell-b cannot revoke the vendor's cell-a grants: {outsider:?}"
    );
    for id in [a.id, b.id] {
        let still = h.broker.request(&user("eng2"), id).await.unwrap();
        assert_eq!(still.status, RequestStatus::Active, "all or nothing");
    }
    let ids = h
        .broker
        .revoke_vendor(
            &user("eng2"),
            &"vendor1".parse().unwrap(),
            "vendor laptop stolen",
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let expired_revoke = h
        .broker
        .revoke_grant(&user("eng2"), a.id, "x")
        .await
        .unwrap_err();
    assert!(matches!(expired_revoke, BrokerError::Conflict(_)));
}

pub(crate) async fn quarantine_blocks_vendors_and_assets(h: &Harness) {
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let vendor_q = h
        .broker
        .quarantine(
            &user("eng2"),
            NewQuarantine {
                subject: QuarantineSubject::Vendor("vendor1".parse().unwrap()),
                duration: None,
                reason: "EDR alert on the vendor laptop".into(),
            },
        )
        .await
        .unwrap();
    let length = vendor_q.until - vendor_q.created_at;
    assert!(
        (length - time::Duration::hours(2)).abs() < time::Duration::seconds(5),
        "default 2 h"
    );
    assert!(matches!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        Err(AccessRefusal::Quarantined { .. })
    ));
    let blocked = h.request("vendor1", "ews-1", "1h").await.unwrap_err();
    assert!(
        matches!(blocked, BrokerError::Forbidden(ref m) if m.contains("quarantined")),
        "{blocked}"
    );
    let cert = h
        .broker
        .issue_token(&user("vendor1"), request.id)
        .await
        .unwrap_err();
    assert!(matches!(cert, BrokerError::Forbidden(_)), "{cert}");
    let vendor_self = h
        .broker
        .lift_quarantine(&user("vendor1"), vendor_q.id)
        .await
        .unwrap_err();
    assert!(matches!(vendor_self, BrokerError::Forbidden(_)));
    h.broker
        .lift_quarantine(&user("eng2"), vendor_q.id)
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_ok()
    );
    let asset_q = h
        .broker
        .quarantine(
            &user("eng1"),
            NewQuarantine {
                subject: QuarantineSubject::Asset("ews-1".parse().unwrap()),
                duration: Some("10m".into()),
                reason: "IDS alert".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_err()
    );
    let outsider = h
        .broker
        .quarantine(
            &user("eng3"),
            NewQuarantine {
                subject: QuarantineSubject::Asset("ews-1".parse().unwrap()),
                duration: None,
                reason: "x".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(outsider, BrokerError::Forbidden(_)));
    h.broker
        .advance(asset_q.until + time::Duration::seconds(1))
        .await
        .unwrap();
    assert!(
        h.broker
            .access(request.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_ok()
    );
    let types = h.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "quarantine_ended").count(), 2);
}

pub(crate) async fn credentials_are_bound_to_the_grant(h: &Harness) {
    let vendor_key =
        ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[9u8; 32]));
    let public = vendor_key.public_key().to_openssh().unwrap();
    let request = h.request("vendor1", "ews-1", "1h").await.unwrap();
    let early = h
        .broker
        .issue_certificate(&user("vendor1"), request.id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(early, BrokerError::Conflict(ref m) if m.contains("pending")),
        "{early}"
    );
    h.broker.approve(&user("eng2"), request.id).await.unwrap();
    let no_key = h
        .broker
        .issue_certificate(&user("vendor1"), request.id, None)
        .await
        .unwrap_err();
    assert!(no_key.to_string().contains("keys add"), "{no_key}");
    assert!(
        h.broker
            .register_key(&user("vendor1"), "ssh-rsa garbage")
            .await
            .is_err()
    );
    let key = h
        .broker
        .register_key(&user("vendor1"), &public)
        .await
        .unwrap();
    let dup = h
        .broker
        .register_key(&user("vendor1"), &public)
        .await
        .unwrap_err();
    assert!(matches!(dup, BrokerError::Conflict(_)));
    let issued = h
        .broker
        .issue_certificate(&user("vendor1"), request.id, None)
        .await
        .unwrap();
    let cert = ssh_key::Certificate::from_openssh(&issued.certificate).unwrap();
    assert_eq!(cert.key_id(), request.id.to_string());
    assert_eq!(cert.valid_principals(), ["vendor1"]);
    assert_eq!(cert.cert_type(), ssh_key::certificate::CertType::User);
    assert_eq!(
        cert.valid_after(),
        request.window.start.unix_timestamp() as u64
    );
    assert_eq!(
        cert.valid_before(),
        request.window.end.unix_timestamp() as u64
    );
    assert!(cert.extensions().contains_key("permit-pty"));
    assert!(!cert.extensions().contains_key("permit-agent-forwarding"));
    assert!(!cert.extensions().contains_key("permit-X11-forwarding"));
    let ca = h
        .broker
        .keys()
        .ssh_ca_fingerprint()
        .parse::<ssh_key::Fingerprint>()
        .unwrap();
    cert.validate_at(OffsetDateTime::now_utc().unix_timestamp() as u64, [&ca])
        .unwrap();
    assert!(
        cert.validate_at(request.window.end.unix_timestamp() as u64 + 1, [&ca])
            .is_err()
    );
    assert_eq!(issued.key_fingerprint, key.fingerprint);
    // Someone else's grant gives nothing.
    let theft = h
        .broker
        .issue_certificate(&user("eng2"), request.id, None)
        .await
        .unwrap_err();
    assert!(matches!(theft, BrokerError::Forbidden(_)), "{theft}");
    let token = h
        .broker
        .issue_token(&user("vendor1"), request.id)
        .await
        .unwrap();
    let claims = h.broker.verify_token(&token.token).unwrap();
    assert_eq!(claims.grant, request.id.get());
    assert_eq!(claims.sub, "vendor1");
    assert_eq!(claims.exp, request.window.end.unix_timestamp());
    let mut forged = token.token.clone();
    forged.pop();
    forged.push(if token.token.ends_with('A') { 'B' } else { 'A' });
    assert!(h.broker.verify_token(&forged).is_err());
    assert!(h.broker.verify_token("not.a.jwt").is_err());
    assert_eq!(h.count("certificate_issued").await, 1);
    assert_eq!(h.count("token_issued").await, 1);
}

pub(crate) async fn vault_keeps_secrets_sealed(h: &Harness) {
    let new = NewCredential {
        name: "ews-1-maint".parse().unwrap(),
        kind: CredentialKind::Password,
        secret: Secret::new("Pl@nt-P4ssw0rd".into()),
    };
    let denied = h
        .broker
        .store_credential(&user("eng1"), new.clone())
        .await
        .unwrap_err();
    assert!(matches!(denied, BrokerError::Forbidden(_)));
    h.broker
        .store_credential(&user("admin"), new)
        .await
        .unwrap();
    let listed = h.broker.credentials(&user("admin")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!serde_json::to_string(&listed).unwrap().contains("P4ssw0rd"));
    let (kind, secret) = h
        .broker
        .credential_secret(&"ews-1-maint".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(kind, CredentialKind::Password);
    assert_eq!(secret.expose(), b"Pl@nt-P4ssw0rd");
    let bad_key = NewCredential {
        name: "k".parse().unwrap(),
        kind: CredentialKind::PrivateKey,
        secret: Secret::new("-----BEGIN nonsense".into()),
    };
    assert!(matches!(
        h.broker.store_credential(&user("admin"), bad_key).await,
        Err(BrokerError::Invalid(_))
    ));
}
