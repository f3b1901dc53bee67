//! The inventory in storage (zones, assets) and the vault of asset credentials.

use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use otgate_policy::authz::{self, GROUPING};
use otgate_policy::{
    Action, Asset, AssetName, CredentialName, Event, EventKind, Inventory, Zone, ZoneName,
};

use crate::error::{BrokerError, Result};
use crate::events::Batch;
use crate::model::{Credential, CredentialKind};
use crate::secret::Secret;
use crate::store::{Tx, casbin, from_millis, millis, on_pool, on_tx};
use crate::{Broker, Principal};

/// A credential to store in the vault.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// Name, referenced by asset endpoints (`credential = "..."`).
    pub name: CredentialName,
    /// Kind.
    pub kind: CredentialKind,
    /// The password, or the OpenSSH private key text.
    #[schema(value_type = String)]
    pub secret: Secret<String>,
}

const ALL_ACTIONS: [Action; 5] = [
    Action::Request,
    Action::Approve,
    Action::Observe,
    Action::Audit,
    Action::Administer,
];

fn vault_purpose(name: &CredentialName) -> String {
    format!("vault:{name}")
}

fn corrupt(what: &str, name: &str) -> BrokerError {
    BrokerError::invalid(format!("stored {what} `{name}` is unreadable"))
}

impl Broker {
    /// Imports zones and assets (admins of every zone only), replacing the organisations
    /// admitted to each zone in the document. All or nothing.
    pub async fn import_inventory(&self, who: &Principal, inventory: Inventory) -> Result<()> {
        self.require_everywhere(who, Action::Administer, "import an inventory")
            .await?;
        self.load_inventory(Some(who), inventory).await
    }

    /// Loads an inventory document without an authorization check: the configured GitOps file
    /// at start, and `otgate demo`.
    pub async fn load_inventory(&self, by: Option<&Principal>, inventory: Inventory) -> Result<()> {
        let known = self.zone_names().await?;
        inventory.validate(&known)?;
        let now = millis(OffsetDateTime::now_utc());
        let actor = by.map(|p| p.user.clone());
        let source = by.and_then(|p| p.source);
        let mut batch = Batch::begin(self).await?;
        let existing_rules = casbin::rules(&mut batch.tx, GROUPING).await?;
        for zone in &inventory.zones {
            let definition =
                serde_json::to_string(zone).map_err(|e| BrokerError::invalid(e.to_string()))?;
            on_tx!(&mut batch.tx, conn => sqlx::query(
                "INSERT INTO zones (name, definition, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at"
            )
            .bind(zone.name.as_str())
            .bind(definition)
            .bind(now)
            .execute(conn)
            .await.map(|r| r.rows_affected()))?;
            for rule in existing_rules
                .iter()
                .filter(|r| authz::is_admission_to(r, &zone.name))
            {
                casbin::delete_rule(&mut batch.tx, GROUPING, rule).await?;
            }
            for org in &zone.vendor_orgs {
                casbin::insert_rule(
                    &mut batch.tx,
                    GROUPING,
                    &authz::admission_rule(org, &zone.name),
                )
                .await?;
            }
            batch
                .emit(
                    Event::now(EventKind::ZoneSaved {
                        name: zone.name.clone(),
                    })
                    .by(actor.clone())
                    .from_addr(source)
                    .in_zone(Some(zone.name.clone())),
                )
                .await?;
        }
        for asset in &inventory.assets {
            let created = upsert_asset(&mut batch.tx, asset, now).await?;
            batch
                .emit(
                    Event::now(EventKind::AssetSaved {
                        asset: asset.name.clone(),
                        level: asset.level,
                        created,
                    })
                    .by(actor.clone())
                    .from_addr(source)
                    .in_zone(Some(asset.zone.clone())),
                )
                .await?;
        }
        batch
            .emit(
                Event::now(EventKind::InventoryImported {
                    zones: inventory.zones.len(),
                    assets: inventory.assets.len(),
                })
                .by(actor)
                .from_addr(source),
            )
            .await?;
        batch.commit(self).await?;
        self.authz.write().await.reload().await?;
        Ok(())
    }

    /// Adds or changes one asset (admins of its zone, and of its old zone when it moves).
    /// Returns whether it is new.
    pub async fn save_asset(&self, who: &Principal, asset: Asset) -> Result<bool> {
        asset.validate("asset")?;
        self.require(who, Action::Administer, &asset.zone, "change assets")
            .await?;
        if !self.zone_names().await?.contains(&asset.zone) {
            return Err(BrokerError::invalid(format!(
                "zone `{}` does not exist: import it first (otgate assets import plant.toml)",
                asset.zone
            )));
        }
        if let Some(old) = self.find_asset(&asset.name).await?
            && old.zone != asset.zone
        {
            self.require(
                who,
                Action::Administer,
                &old.zone,
                "move assets out of their zone",
            )
            .await?;
        }
        let mut batch = Batch::begin(self).await?;
        let created =
            upsert_asset(&mut batch.tx, &asset, millis(OffsetDateTime::now_utc())).await?;
        batch
            .emit(
                Event::now(EventKind::AssetSaved {
                    asset: asset.name.clone(),
                    level: asset.level,
                    created,
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source)
                .in_zone(Some(asset.zone.clone())),
            )
            .await?;
        batch.commit(self).await?;
        Ok(created)
    }

    /// An asset as stored, without an authorization check: for the gateway, which acts on
    /// grants the broker has already authorized.
    pub async fn find_asset(&self, name: &AssetName) -> Result<Option<Asset>> {
        let definition: Option<String> = on_pool!(&self.store, pool => sqlx::query_scalar(
            "SELECT definition FROM assets WHERE name = $1"
        )
        .bind(name.as_str())
        .fetch_optional(pool)
        .await)?;
        definition
            .map(|d| serde_json::from_str(&d).map_err(|_| corrupt("asset", name.as_str())))
            .transpose()
    }

    /// The asset one of whose endpoints is `host` (an IP address or name), without an
    /// authorization check: for alerts from sensors, which name addresses.
    pub async fn find_asset_by_host(&self, host: &str) -> Result<Option<Asset>> {
        let rows: Vec<(String, String)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT name, definition FROM assets ORDER BY name"
        )
        .fetch_all(pool)
        .await)?;
        for (name, definition) in rows {
            let asset: Asset =
                serde_json::from_str(&definition).map_err(|_| corrupt("asset", &name))?;
            if asset
                .endpoints
                .iter()
                .any(|e| e.host.eq_ignore_ascii_case(host))
            {
                return Ok(Some(asset));
            }
        }
        Ok(None)
    }

    /// Assets in the zones where the caller holds any permission.
    pub async fn assets(&self, who: &Principal) -> Result<Vec<Asset>> {
        let rows: Vec<(String, String)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT name, definition FROM assets ORDER BY zone, level, name"
        )
        .fetch_all(pool)
        .await)?;
        let authz = self.authz.read().await;
        let mut assets = Vec::with_capacity(rows.len());
        for (name, definition) in rows {
            let asset: Asset =
                serde_json::from_str(&definition).map_err(|_| corrupt("asset", &name))?;
            if ALL_ACTIONS
                .iter()
                .any(|a| authz.is_allowed(&who.user, &asset.zone, *a))
            {
                assets.push(asset);
            }
        }
        Ok(assets)
    }

    /// One asset, if the caller may see its zone.
    pub async fn asset(&self, who: &Principal, name: &AssetName) -> Result<Asset> {
        let not_found =
            || BrokerError::NotFound(format!("no asset `{name}`: see `otgate assets list`"));
        let asset = self.find_asset(name).await?.ok_or_else(not_found)?;
        let authz = self.authz.read().await;
        if ALL_ACTIONS
            .iter()
            .any(|a| authz.is_allowed(&who.user, &asset.zone, *a))
        {
            Ok(asset)
        } else {
            Err(not_found())
        }
    }

    async fn zone_names(&self) -> Result<Vec<ZoneName>> {
        let names: Vec<String> = on_pool!(&self.store, pool => sqlx::query_scalar("SELECT name FROM zones ORDER BY name")
            .fetch_all(pool)
            .await)?;
        names
            .into_iter()
            .map(|n| ZoneName::new(n).map_err(BrokerError::from))
            .collect()
    }

    /// Every zone (any logged-in user: zones are not secret, their assets may be).
    pub async fn zones(&self) -> Result<Vec<Zone>> {
        let rows: Vec<(String, String)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT name, definition FROM zones ORDER BY name"
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(name, d)| serde_json::from_str(&d).map_err(|_| corrupt("zone", &name)))
            .collect()
    }

    /// Stores (or replaces) a credential in the vault (admins of every zone only).
    pub async fn store_credential(
        &self,
        who: &Principal,
        new: NewCredential,
    ) -> Result<Credential> {
        self.require_everywhere(who, Action::Administer, "store credentials")
            .await?;
        let secret = new.secret.expose();
        if secret.is_empty() || secret.len() > 64 * 1024 {
            return Err(BrokerError::invalid("the secret must be 1 byte to 64 KiB"));
        }
        if new.kind == CredentialKind::PrivateKey {
            let key = ssh_key::PrivateKey::from_openssh(secret.as_bytes()).map_err(|e| {
                BrokerError::invalid(format!(
                    "not an OpenSSH private key ({e}): pass the key file's text"
                ))
            })?;
            if key.is_encrypted() {
                return Err(BrokerError::invalid(
                    "the private key is passphrase-protected: store it decrypted (the vault encrypts it)",
                ));
            }
        }
        let sealed = self
            .keys
            .vault
            .seal(&vault_purpose(&new.name), secret.as_bytes())?;
        let now = OffsetDateTime::now_utc();
        let mut batch = Batch::begin(self).await?;
        on_tx!(&mut batch.tx, conn => sqlx::query(
            "INSERT INTO vault (name, kind, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, sealed = excluded.sealed, updated_at = excluded.updated_at"
        )
        .bind(new.name.as_str())
        .bind(new.kind.as_str())
        .bind(sealed)
        .bind(millis(now))
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
        batch
            .emit(
                Event::now(EventKind::CredentialStored {
                    credential: new.name.clone(),
                    credential_kind: new.kind.as_str().to_owned(),
                })
                .by(Some(who.user.clone()))
                .from_addr(who.source),
            )
            .await?;
        batch.commit(self).await?;
        Ok(Credential {
            name: new.name,
            kind: new.kind,
            updated_at: now,
        })
    }

    /// Names and kinds of vaulted credentials (admins of every zone only); never the secrets.
    pub async fn credentials(&self, who: &Principal) -> Result<Vec<Credential>> {
        self.require_everywhere(who, Action::Administer, "list credentials")
            .await?;
        let rows: Vec<(String, String, i64)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT name, kind, updated_at FROM vault ORDER BY name"
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(name, kind, updated_at)| {
                let kind = match kind.as_str() {
                    "password" => CredentialKind::Password,
                    "private_key" => CredentialKind::PrivateKey,
                    _ => return Err(corrupt("credential", &name)),
                };
                Ok(Credential {
                    name: CredentialName::new(name)?,
                    kind,
                    updated_at: from_millis(updated_at)?,
                })
            })
            .collect()
    }

    /// A vaulted secret, for the gateway to log in to an asset. Never exposed by the API.
    pub async fn credential_secret(
        &self,
        name: &CredentialName,
    ) -> Result<(CredentialKind, Secret<Vec<u8>>)> {
        let row: Option<(String, Vec<u8>)> = on_pool!(&self.store, pool => sqlx::query_as(
            "SELECT kind, sealed FROM vault WHERE name = $1"
        )
        .bind(name.as_str())
        .fetch_optional(pool)
        .await)?;
        let (kind, sealed) = row
            .ok_or_else(|| BrokerError::NotFound(format!("no credential `{name}` in the vault")))?;
        let kind = if kind == "private_key" {
            CredentialKind::PrivateKey
        } else {
            CredentialKind::Password
        };
        Ok((kind, self.keys.vault.open(&vault_purpose(name), &sealed)?))
    }
}

async fn upsert_asset(tx: &mut Tx, asset: &Asset, now: i64) -> Result<bool> {
    let existed: Option<String> = on_tx!(tx, conn => sqlx::query_scalar("SELECT name FROM assets WHERE name = $1")
        .bind(asset.name.as_str())
        .fetch_optional(conn)
        .await)?;
    let definition =
        serde_json::to_string(asset).map_err(|e| BrokerError::invalid(e.to_string()))?;
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO assets (name, zone, level, definition, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name) DO UPDATE SET zone = excluded.zone, level = excluded.level, \
         definition = excluded.definition, updated_at = excluded.updated_at"
    )
    .bind(asset.name.as_str())
    .bind(asset.zone.as_str())
    .bind(asset.level.as_str())
    .bind(definition)
    .bind(now)
    .execute(conn)
    .await.map(|r| r.rows_affected()))?;
    Ok(existed.is_none())
}
