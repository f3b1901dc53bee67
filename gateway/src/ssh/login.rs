//! Who is logging in and to what: the login name (`vendor`, `vendor+asset`,
//! `vendor+GRANT`) and the OpenSSH user certificate our CA issued for a grant.

use russh::keys::Certificate;
use russh::keys::ssh_key::Fingerprint;
use russh::keys::ssh_key::certificate::CertType;

use otgate_policy::{Grant, GrantId};

/// What the login name asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The vendor.
    pub vendor: String,
    /// The asset or grant after `+`, if any.
    pub pick: Option<Pick>,
}

/// The part after `+`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// An asset name.
    Asset(String),
    /// A grant id.
    Grant(i64),
}

/// Splits `vendor+asset` / `vendor+42` / `vendor`.
pub(crate) fn parse_login(user: &str) -> Target {
    match user.split_once('+') {
        Some((vendor, pick)) => Target {
            vendor: vendor.to_owned(),
            pick: Some(match pick.parse::<i64>() {
                Ok(id) => Pick::Grant(id),
                Err(_) => Pick::Asset(pick.to_owned()),
            }),
        },
        None => Target {
            vendor: user.to_owned(),
            pick: None,
        },
    }
}

/// Checks a certificate: signed by our CA, a user certificate, valid now, for this vendor;
/// returns the grant named in its key id.
pub(crate) fn check_certificate(
    certificate: &Certificate,
    ca: &Fingerprint,
    vendor: &str,
    now: u64,
) -> Result<GrantId, String> {
    certificate.validate_at(now, [ca]).map_err(|e| {
        format!("the certificate is not valid now or not signed by this gateway's CA ({e})")
    })?;
    if certificate.cert_type() != CertType::User {
        return Err("a host certificate cannot log in".into());
    }
    if !certificate.valid_principals().iter().any(|p| p == vendor) {
        return Err(format!(
            "the certificate is for {}, not for {vendor}",
            certificate.valid_principals().join(", ")
        ));
    }
    certificate
        .key_id()
        .parse::<i64>()
        .ok()
        .and_then(|id| GrantId::new(id).ok())
        .ok_or_else(|| {
            format!(
                "the certificate's key id {:?} names no grant",
                certificate.key_id()
            )
        })
}

/// The vendor's usable grants as login names, one per line, for messages.
pub(crate) fn list_grants(vendor: &str, grants: &[Grant]) -> String {
    if grants.is_empty() {
        return format!("{vendor} has no usable grant: ask for one with `otgate request create`");
    }
    let mut text = format!("{vendor}'s usable grants (log in as one of these):");
    for grant in grants {
        text.push_str(&format!(
            "\r\n  ssh {vendor}+{}@GATEWAY   (grant {}, on {}, until {})",
            grant.asset, grant.id, grant.asset, grant.window.end
        ));
    }
    text
}

/// Picks the grant a registered-key login means: the one named, the only one for the named
/// asset, or the only one at all; otherwise a message listing them.
pub(crate) fn pick_grant(target: &Target, grants: &[Grant]) -> Result<Grant, String> {
    let candidates: Vec<&Grant> = grants
        .iter()
        .filter(|g| match &target.pick {
            None => true,
            Some(Pick::Asset(asset)) => g.asset.as_str() == asset,
            Some(Pick::Grant(id)) => g.id.get() == *id,
        })
        .collect();
    match candidates.as_slice() {
        [grant] => Ok((*grant).clone()),
        [] => Err(format!(
            "no usable grant matches {:?}. {}",
            target,
            list_grants(&target.vendor, grants)
        )),
        _ => Err(format!(
            "several grants match: name one. {}",
            list_grants(&target.vendor, grants)
        )),
    }
}

/// Whether the login name's pick matches the grant; the message says what to type instead.
pub(crate) fn check_pick(target: &Target, grant: &Grant) -> Result<(), String> {
    let matches = match &target.pick {
        None => true,
        Some(Pick::Asset(asset)) => asset == grant.asset.as_str(),
        Some(Pick::Grant(id)) => *id == grant.id.get(),
    };
    if matches {
        Ok(())
    } else {
        Err(format!(
            "this certificate is for grant {} on {}: log in as {}+{} (or {}+{})",
            grant.id, grant.asset, target.vendor, grant.asset, target.vendor, grant.id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_pick_an_asset_or_a_grant() {
        assert_eq!(parse_login("vendor1").pick, None);
        assert_eq!(
            parse_login("vendor1+plc-7").pick,
            Some(Pick::Asset("plc-7".into()))
        );
        assert_eq!(parse_login("vendor1+42").pick, Some(Pick::Grant(42)));
        assert_eq!(parse_login("vendor1+42").vendor, "vendor1");
    }
}
