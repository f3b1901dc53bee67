//! Credentials bound to a grant: an OpenSSH user certificate for the vendor's registered key
//! (key id = grant id, principal = vendor, valid exactly for the window, no agent or X11
//! forwarding) and an EdDSA JWT for the tunnel client (exp = window end).

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::{HashAlg, PublicKey};
use time::OffsetDateTime;

use otgate_policy::{Event, EventKind, Grant, GrantId, Protocol, QuarantineSubject};

use crate::error::{BrokerError, Result};
use crate::model::{IssuedCertificate, IssuedToken, Request, RequestStatus};
use crate::vault::random_bytes;
use crate::{Broker, Principal};

/// Audience of tunnel tokens.
pub const TUNNEL_AUDIENCE: &str = "otgate-tunnel";
/// Issuer of tunnel tokens.
pub const ISSUER: &str = "otgate";

/// Claims of a tunnel token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelClaims {
    /// Issuer.
    pub iss: String,
    /// The vendor.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Token id.
    pub jti: String,
    /// The grant.
    pub grant: i64,
    /// The asset.
    pub asset: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before: window start.
    pub nbf: i64,
    /// Expiry: window end.
    pub exp: i64,
}

fn unix(t: OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

impl Broker {
    /// The caller's grant, usable for new credentials now.
    async fn own_live_grant(&self, who: &Principal, id: GrantId) -> Result<(Request, Grant)> {
        let request = self.request(who, id).await?;
        if request.requester != who.user {
            return Err(BrokerError::Forbidden(format!(
                "grant {id} belongs to {}, not to you",
                request.requester
            )));
        }
        match request.status {
            RequestStatus::Approved | RequestStatus::Active => {}
            RequestStatus::Pending => {
                return Err(BrokerError::Conflict(format!(
                    "request {id} is still pending: it has {} of {} approvals",
                    request.approvals.len(),
                    request.approvals_needed
                )));
            }
            other => {
                return Err(BrokerError::Conflict(format!(
                    "grant {id} is {other}: no new credentials"
                )));
            }
        }
        let now = OffsetDateTime::now_utc();
        for subject in [
            QuarantineSubject::Vendor(request.requester.clone()),
            QuarantineSubject::Asset(request.asset.clone()),
        ] {
            if let Some(q) = self.active_quarantine(&subject, now).await? {
                return Err(BrokerError::Forbidden(format!(
                    "{subject} is quarantined until {}: {}",
                    q.until, q.reason
                )));
            }
        }
        let grant = request
            .grant()
            .ok_or_else(|| BrokerError::Conflict(format!("grant {id} lacks its approvals")))?;
        Ok((request, grant))
    }

    /// Issues an OpenSSH user certificate for one of the caller's registered keys: the one named
    /// by `key` (a `SHA256:` fingerprint or the public key line itself), or the only one.
    pub async fn issue_certificate(
        &self,
        who: &Principal,
        id: GrantId,
        key: Option<&str>,
    ) -> Result<IssuedCertificate> {
        let (request, grant) = self.own_live_grant(who, id).await?;
        if !grant.protocols.contains(&Protocol::Ssh)
            && !grant.protocols.contains(&Protocol::Modbus)
            && !grant.protocols.contains(&Protocol::Tcp)
        {
            return Err(BrokerError::Conflict(format!(
                "grant {id} has no protocol a certificate serves"
            )));
        }
        let keys = self.keys_of(who).await?;
        let wanted = match key {
            Some(text) if text.trim().starts_with("SHA256:") => Some(text.trim().to_owned()),
            Some(text) => Some(
                PublicKey::from_openssh(text.trim())
                    .map_err(|e| {
                        BrokerError::invalid(format!(
                            "--key is neither a fingerprint nor a public key: {e}"
                        ))
                    })?
                    .fingerprint(HashAlg::Sha256)
                    .to_string(),
            ),
            None => None,
        };
        let key = match wanted.as_deref() {
            Some(fp) => keys.iter().find(|k| k.fingerprint == fp).ok_or_else(|| {
                BrokerError::NotFound(format!(
                    "you have no registered key {fp}: see `otgate keys list`"
                ))
            })?,
            None => match keys.as_slice() {
                [only] => only,
                [] => {
                    return Err(BrokerError::Conflict(
                        "register your SSH public key first: otgate keys add ~/.ssh/id_ed25519.pub"
                            .into(),
                    ));
                }
                _ => {
                    return Err(BrokerError::invalid(
                        "you have several keys: say which with --key FILE.pub (or its fingerprint)",
                    ));
                }
            },
        };
        let public = PublicKey::from_openssh(&key.public_key).map_err(|e| {
            BrokerError::invalid(format!("stored key {} is unreadable: {e}", key.fingerprint))
        })?;
        let serial = u64::from_be_bytes(random_bytes::<8>()?);
        let nonce = random_bytes::<32>()?;
        let valid_after = grant.window.start;
        let valid_before = grant.window.end;
        let ssh_error =
            |e: ssh_key::Error| BrokerError::Crypto(format!("building the certificate: {e}"));
        let mut builder = Builder::new(
            nonce.to_vec(),
            public.key_data().clone(),
            unix(valid_after),
            unix(valid_before),
        )
        .map_err(ssh_error)?;
        builder
            .serial(serial)
            .and_then(|b| b.cert_type(CertType::User))
            .and_then(|b| b.key_id(grant.id.to_string()))
            .and_then(|b| b.valid_principal(grant.vendor.as_str()))
            .and_then(|b| {
                b.comment(format!(
                    "otgate grant {} for {} on {}",
                    grant.id, grant.vendor, grant.asset
                ))
            })
            .map_err(ssh_error)?;
        if grant.protocols.contains(&Protocol::Ssh) {
            builder.extension("permit-pty", "").map_err(ssh_error)?;
        }
        if grant
            .protocols
            .iter()
            .any(|p| matches!(p, Protocol::Modbus | Protocol::Tcp))
        {
            builder
                .extension("permit-port-forwarding", "")
                .map_err(ssh_error)?;
        }
        let certificate = builder.sign(&self.keys.ssh_ca).map_err(ssh_error)?;
        let line = certificate.to_openssh().map_err(ssh_error)?;
        let key_fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
        self.record(
            Event::now(EventKind::CertificateIssued {
                grant: grant.id,
                serial,
                key_fingerprint: key_fingerprint.clone(),
                valid_after,
                valid_before,
            })
            .by(Some(who.user.clone()))
            .from_addr(who.source)
            .in_zone(Some(request.zone.clone())),
        )
        .await?;
        Ok(IssuedCertificate {
            grant: grant.id,
            certificate: line,
            serial,
            key_id: grant.id.to_string(),
            principal: grant.vendor.to_string(),
            key_fingerprint,
            valid_after,
            valid_before,
        })
    }

    /// Issues a tunnel token (EdDSA JWT) for the caller's grant.
    pub async fn issue_token(&self, who: &Principal, id: GrantId) -> Result<IssuedToken> {
        let (request, grant) = self.own_live_grant(who, id).await?;
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = TunnelClaims {
            iss: ISSUER.into(),
            sub: grant.vendor.to_string(),
            aud: TUNNEL_AUDIENCE.into(),
            jti: jti.clone(),
            grant: grant.id.get(),
            asset: grant.asset.to_string(),
            iat: OffsetDateTime::now_utc().unix_timestamp(),
            nbf: grant.window.start.unix_timestamp(),
            exp: grant.window.end.unix_timestamp(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &self.keys.jwt_encoding,
        )
        .map_err(|e| BrokerError::Crypto(format!("signing the token: {e}")))?;
        self.record(
            Event::now(EventKind::TokenIssued {
                grant: grant.id,
                jti: jti.clone(),
                expires: grant.window.end,
            })
            .by(Some(who.user.clone()))
            .from_addr(who.source)
            .in_zone(Some(request.zone.clone())),
        )
        .await?;
        Ok(IssuedToken {
            grant: grant.id,
            token,
            jti,
            expires: grant.window.end,
        })
    }

    /// Verifies a tunnel token's signature, issuer, audience and times (the grant's state is
    /// checked separately with [`Broker::access`]).
    pub fn verify_token(&self, token: &str) -> Result<TunnelClaims> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[TUNNEL_AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        // RFC 7519: the current time must be before `exp`. The library accepts `now == exp` at
        // whole seconds, one second past the window's end; this rejects from `exp` on.
        validation.reject_tokens_expiring_in_less_than = 1;
        jsonwebtoken::decode::<TunnelClaims>(token, &self.keys.jwt_decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| BrokerError::Unauthenticated(format!("tunnel token refused: {e}")))
    }
}
