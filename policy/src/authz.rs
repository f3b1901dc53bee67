//! Authorization: role-based access control with domains (zones), on casbin.
//!
//! Subjects are prefixed so that names never collide: `user:NAME`, `org:NAME`, `role:NAME`.
//! A user holds a role in a zone (`g, user:eng1, role:engineer, cell-a`) or everywhere (`*`);
//! a vendor may also hold the vendor role through their organisation
//! (`g, user:v1, org:acme, *` and `g, org:acme, role:vendor, cell-a`). Roles map to actions with
//! the fixed permissions in [`PERMISSIONS`]. The rules live in the database through the adapter
//! the broker passes in.

use std::fmt;

use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, MgmtApi, RbacApi, function_map::key_match};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{PolicyError, Result};
use crate::id::{OrgName, UserName, ZoneName};

const MODEL: &str = r#"
[request_definition]
r = sub, dom, act

[policy_definition]
p = sub, dom, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && (p.dom == "*" || r.dom == p.dom) && r.act == p.act
"#;

/// A role.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Asks for access and uses grants.
    Vendor,
    /// Approves requests and watches sessions in their zones.
    Engineer,
    /// Searches, replays and verifies recordings and events.
    Auditor,
    /// Manages assets, users and policy.
    Admin,
    /// An IDS, EDR or SIEM integration: reports alerts, nothing else.
    Sensor,
}

/// An action that needs authorization in a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Ask for access to an asset.
    Request,
    /// Approve, deny or revoke access; quarantine.
    Approve,
    /// Watch live sessions and their events.
    Observe,
    /// Read recordings, events and evidence.
    Audit,
    /// Change assets, users, credentials and policy.
    Administer,
    /// Report external alerts (IDS, EDR).
    Report,
}

/// Which actions each role may take.
pub const PERMISSIONS: &[(Role, Action)] = &[
    (Role::Vendor, Action::Request),
    (Role::Engineer, Action::Approve),
    (Role::Engineer, Action::Observe),
    (Role::Auditor, Action::Audit),
    (Role::Admin, Action::Administer),
    (Role::Admin, Action::Audit),
    (Role::Sensor, Action::Report),
];

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Vendor,
        Role::Engineer,
        Role::Auditor,
        Role::Admin,
        Role::Sensor,
    ];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vendor => "vendor",
            Self::Engineer => "engineer",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
            Self::Sensor => "sensor",
        }
    }

    /// Whether logging in with this role requires a second factor.
    pub fn requires_totp(self) -> bool {
        matches!(self, Self::Engineer | Self::Admin)
    }

    fn subject(self) -> String {
        format!("role:{}", self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = PolicyError;
    fn from_str(value: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| {
                PolicyError::invalid(
                    "role",
                    format!(
                        "unknown role `{}`: expected vendor, engineer, auditor, admin or sensor",
                        value.chars().take(32).collect::<String>()
                    ),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Approve => "approve",
            Self::Observe => "observe",
            Self::Audit => "audit",
            Self::Administer => "administer",
            Self::Report => "report",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a role holds: one zone, or every zone.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Domain {
    /// Every zone (`*`).
    Any,
    /// One zone.
    Zone(ZoneName),
}

impl Domain {
    fn as_casbin(&self) -> &str {
        match self {
            Self::Any => "*",
            Self::Zone(zone) => zone.as_str(),
        }
    }
}

impl TryFrom<String> for Domain {
    type Error = PolicyError;
    fn try_from(value: String) -> Result<Self> {
        if value == "*" {
            Ok(Self::Any)
        } else {
            ZoneName::new(value).map(Self::Zone)
        }
    }
}

impl From<Domain> for String {
    fn from(value: Domain) -> String {
        value.as_casbin().to_owned()
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_casbin())
    }
}

/// A role a user holds directly, in a domain.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct RoleAssignment {
    /// The role.
    pub role: Role,
    /// Where it holds.
    pub domain: Domain,
}

impl fmt::Display for RoleAssignment {
    /// `role@zone` or `role@*`, as [`FromStr`](std::str::FromStr) reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.role, self.domain)
    }
}

impl std::str::FromStr for RoleAssignment {
    type Err = PolicyError;

    /// `role@zone`, or `role@*` for every zone (`engineer@line-1`, `auditor@*`).
    fn from_str(text: &str) -> Result<Self> {
        let invalid = || {
            PolicyError::invalid(
                "role",
                format!("`{text}`: write role@zone or role@*, e.g. engineer@line-1"),
            )
        };
        let (role, domain) = text.trim().split_once('@').ok_or_else(invalid)?;
        let domain = match domain {
            "*" => Domain::Any,
            zone => Domain::Zone(ZoneName::new(zone).map_err(|_| invalid())?),
        };
        Ok(Self {
            role: role.parse()?,
            domain,
        })
    }
}

fn user_subject(user: &UserName) -> String {
    format!("user:{user}")
}

fn org_subject(org: &OrgName) -> String {
    format!("org:{org}")
}

/// casbin's policy type of every rule built here (role assignments and memberships).
pub const GROUPING: &str = "g";

/// The rule that gives `user` `role` in `domain`.
pub fn role_rule(user: &UserName, role: Role, domain: &Domain) -> Vec<String> {
    vec![
        user_subject(user),
        role.subject(),
        domain.as_casbin().to_owned(),
    ]
}

/// The user and role a grouping rule from [`role_rule`] gives; `None` for any other rule
/// (an organisation's membership or admission).
pub fn rule_role(rule: &[String]) -> Option<(UserName, RoleAssignment)> {
    let user = UserName::new(rule.first()?.strip_prefix("user:")?).ok()?;
    let role = rule.get(1)?.strip_prefix("role:")?.parse().ok()?;
    let domain = Domain::try_from(rule.get(2)?.clone()).ok()?;
    Some((user, RoleAssignment { role, domain }))
}

/// The rule that makes `user` a member of `org`.
pub fn member_rule(user: &UserName, org: &OrgName) -> Vec<String> {
    vec![user_subject(user), org_subject(org), "*".to_owned()]
}

/// The rule that lets vendors of `org` request access in `zone`.
pub fn admission_rule(org: &OrgName, zone: &ZoneName) -> Vec<String> {
    vec![
        org_subject(org),
        Role::Vendor.subject(),
        zone.as_str().to_owned(),
    ]
}

/// Whether a stored rule is an organisation's admission to `zone` (replaced when zones change).
pub fn is_admission_to(rule: &[String], zone: &ZoneName) -> bool {
    matches!(rule, [org, role, domain] if org.starts_with("org:") && *role == Role::Vendor.subject() && domain == zone.as_str())
}

/// Answers "may this user take this action in this zone?" from the stored rules.
pub struct Authorizer {
    enforcer: Enforcer,
}

impl Authorizer {
    /// Loads the rules through `adapter` and makes sure the role permissions are present.
    pub async fn new<A: Adapter + 'static>(adapter: A) -> Result<Self> {
        let model = DefaultModel::from_str(MODEL).await?;
        let mut enforcer = Enforcer::new(model, adapter).await?;
        enforcer
            .get_role_manager()
            .write()
            .matching_fn(None, Some(key_match));
        // Links loaded before the matching function was set must be rebuilt with it.
        enforcer.build_role_links()?;
        for (role, action) in PERMISSIONS {
            let rule = vec![role.subject(), "*".to_owned(), action.as_str().to_owned()];
            if !enforcer.has_policy(rule.clone()) {
                enforcer.add_policy(rule).await?;
            }
        }
        Ok(Self { enforcer })
    }

    /// Whether `user` may take `action` in `zone`.
    pub fn is_allowed(&self, user: &UserName, zone: &ZoneName, action: Action) -> bool {
        self.check(user, zone.as_str(), action)
    }

    /// Whether `user` may take `action` in every zone (holds the role in `*`).
    pub fn is_allowed_everywhere(&self, user: &UserName, action: Action) -> bool {
        // A zone name can never be `*`, so only `*` assignments match this probe.
        self.check(user, "*", action)
    }

    fn check(&self, user: &UserName, domain: &str, action: Action) -> bool {
        self.enforcer
            .enforce(vec![
                user_subject(user),
                domain.to_owned(),
                action.as_str().to_owned(),
            ])
            .unwrap_or(false)
    }

    /// Re-reads every rule from storage (after the broker changed them in a transaction).
    pub async fn reload(&mut self) -> Result<()> {
        self.enforcer.load_policy().await?;
        Ok(())
    }

    /// Roles `user` holds directly (not through an organisation).
    pub fn roles(&self, user: &UserName) -> Vec<RoleAssignment> {
        let mut out: Vec<RoleAssignment> = self
            .enforcer
            .get_filtered_grouping_policy(0, vec![user_subject(user)])
            .into_iter()
            .filter_map(|rule| rule_role(&rule).map(|(_, role)| role))
            .collect();
        out.sort();
        out
    }

    /// The organisation `user` belongs to, if any.
    pub fn org(&self, user: &UserName) -> Option<OrgName> {
        self.enforcer
            .get_filtered_grouping_policy(0, vec![user_subject(user)])
            .into_iter()
            .find_map(|rule| OrgName::new(rule.get(1)?.strip_prefix("org:")?).ok())
    }

    /// Whether `user` has any role at all (directly or through an organisation).
    pub fn is_known(&self, user: &UserName) -> bool {
        !self
            .enforcer
            .get_filtered_grouping_policy(0, vec![user_subject(user)])
            .is_empty()
    }

    /// Whether any of `user`'s direct roles requires a second factor at login.
    pub fn requires_totp(&self, user: &UserName) -> bool {
        self.roles(user).iter().any(|a| a.role.requires_totp())
    }

    /// Users holding `role` directly in `zone` or everywhere.
    pub fn users_with(&self, role: Role, zone: &ZoneName) -> Vec<UserName> {
        let mut users: Vec<UserName> = self
            .enforcer
            .get_users_for_role(&role.subject(), Some(zone.as_str()))
            .into_iter()
            .filter_map(|s| UserName::new(s.strip_prefix("user:")?).ok())
            .collect();
        users.sort();
        users.dedup();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use casbin::{Adapter, MemoryAdapter};

    fn user(name: &str) -> UserName {
        UserName::new(name).unwrap()
    }

    #[test]
    fn role_assignments_are_read_as_role_at_zone() {
        let read: RoleAssignment = "engineer@line-1".parse().unwrap();
        assert_eq!(read.role, Role::Engineer);
        assert_eq!(read.domain, Domain::Zone(ZoneName::new("line-1").unwrap()));
        assert_eq!(
            " auditor@* ".parse::<RoleAssignment>().unwrap().domain,
            Domain::Any
        );
        for text in ["engineer@line-1", "auditor@*", "admin@*"] {
            let read: RoleAssignment = text.parse().unwrap();
            assert_eq!(read.to_string(), text, "written as it is read");
        }
        for bad in [
            "engineer",
            "engineer at line-1",
            "wizard@line-1",
            "engineer@",
            "engineer@Bad Zone",
        ] {
            assert!(bad.parse::<RoleAssignment>().is_err(), "{bad}");
        }
    }

    fn zone(name: &str) -> ZoneName {
        ZoneName::new(name).unwrap()
    }

    async fn authorizer() -> Authorizer {
        let mut adapter = MemoryAdapter::default();
        let acme = OrgName::new("acme").unwrap();
        for rule in [
            role_rule(&user("eng1"), Role::Engineer, &Domain::Zone(zone("cell-a"))),
            role_rule(&user("root"), Role::Admin, &Domain::Any),
            role_rule(&user("aud"), Role::Auditor, &Domain::Any),
            member_rule(&user("v1"), &acme),
            admission_rule(&acme, &zone("cell-a")),
        ] {
            adapter.add_policy("g", GROUPING, rule).await.unwrap();
        }
        Authorizer::new(adapter).await.unwrap()
    }

    #[tokio::test]
    async fn roles_hold_in_their_zones() {
        let authz = authorizer().await;
        assert!(authz.is_allowed(&user("eng1"), &zone("cell-a"), Action::Approve));
        assert!(!authz.is_allowed(&user("eng1"), &zone("cell-b"), Action::Approve));
        assert!(!authz.is_allowed(&user("eng1"), &zone("cell-a"), Action::Administer));
        assert!(authz.is_allowed(&user("root"), &zone("cell-b"), Action::Administer));
        assert!(!authz.is_allowed(&user("root"), &zone("cell-b"), Action::Approve));
        assert!(authz.is_allowed_everywhere(&user("aud"), Action::Audit));
        assert!(!authz.is_allowed_everywhere(&user("eng1"), Action::Approve));
    }

    #[tokio::test]
    async fn vendors_get_zones_through_their_organisation() {
        let authz = authorizer().await;
        assert!(authz.is_allowed(&user("v1"), &zone("cell-a"), Action::Request));
        assert!(!authz.is_allowed(&user("v1"), &zone("cell-b"), Action::Request));
        assert!(!authz.is_allowed(&user("v1"), &zone("cell-a"), Action::Approve));
        assert!(!authz.is_allowed(&user("stranger"), &zone("cell-a"), Action::Request));
        assert_eq!(authz.org(&user("v1")).unwrap().as_str(), "acme");
    }

    #[tokio::test]
    async fn roles_and_second_factor() {
        let authz = authorizer().await;
        assert_eq!(
            authz.roles(&user("eng1")),
            [RoleAssignment {
                role: Role::Engineer,
                domain: Domain::Zone(zone("cell-a"))
            }]
        );
        assert!(authz.requires_totp(&user("eng1")));
        assert!(!authz.requires_totp(&user("v1")));
        assert!(authz.is_known(&user("v1")));
        assert!(!authz.is_known(&user("nobody")));
        assert_eq!(
            authz.users_with(Role::Engineer, &zone("cell-a")),
            [user("eng1")]
        );
        assert!(is_admission_to(
            &admission_rule(&OrgName::new("x").unwrap(), &zone("cell-a")),
            &zone("cell-a")
        ));
        assert!(!is_admission_to(
            &role_rule(&user("v"), Role::Vendor, &Domain::Zone(zone("cell-a"))),
            &zone("cell-a")
        ));
    }
}

crate::schema::string_schema!(Domain, "A zone name, or `*` for every zone", "cell-a");
