//! casbin's rules in the `casbin_rule` table, on sqlx 0.9, for both backends.
//!
//! The published sqlx adapter is pinned to an older sqlx and one database per build; this one
//! is small: rules are rows of `ptype, v0..v5`.

use async_trait::async_trait;
use casbin::error::AdapterError;
use casbin::{Adapter, Filter, Model};

use super::{Store, Tx, on_pool, on_tx};
use crate::error::Result;

const SELECT_RULES: &str = "SELECT ptype, v0, v1, v2, v3, v4, v5 FROM casbin_rule ORDER BY id";
const INSERT_RULE: &str = "INSERT INTO casbin_rule (ptype, v0, v1, v2, v3, v4, v5) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
const DELETE_RULE: &str = "DELETE FROM casbin_rule WHERE ptype = $1 AND v0 = $2 AND v1 = $3 AND v2 = $4 \
     AND v3 = $5 AND v4 = $6 AND v5 = $7";

/// Adds a rule inside a transaction (the caller reloads the authorizer after commit).
pub(crate) async fn insert_rule(tx: &mut Tx, ptype: &str, rule: &[String]) -> Result<()> {
    let v = columns(rule);
    on_tx!(tx, conn => sqlx::query(INSERT_RULE)
        .bind(ptype).bind(&v[0]).bind(&v[1]).bind(&v[2]).bind(&v[3]).bind(&v[4]).bind(&v[5])
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes a rule inside a transaction.
pub(crate) async fn delete_rule(tx: &mut Tx, ptype: &str, rule: &[String]) -> Result<()> {
    let v = columns(rule);
    on_tx!(tx, conn => sqlx::query(DELETE_RULE)
        .bind(ptype).bind(&v[0]).bind(&v[1]).bind(&v[2]).bind(&v[3]).bind(&v[4]).bind(&v[5])
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every rule of type `ptype`, inside a transaction.
pub(crate) async fn rules(tx: &mut Tx, ptype: &str) -> Result<Vec<Vec<String>>> {
    let rows =
        on_tx!(tx, conn => sqlx::query_as::<_, RuleRow>(SELECT_RULES).fetch_all(conn).await)?;
    Ok(rows
        .into_iter()
        .filter(|r| r.ptype == ptype)
        .map(RuleRow::values)
        .collect())
}

/// The casbin adapter over a [`Store`].
pub(crate) struct CasbinAdapter {
    store: Store,
    filtered: bool,
}

impl CasbinAdapter {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            filtered: false,
        }
    }
}

fn adapter_error(error: sqlx::Error) -> casbin::Error {
    casbin::Error::AdapterError(AdapterError(Box::new(error)))
}

/// A rule padded to the six value columns.
fn columns(rule: &[String]) -> [String; 6] {
    std::array::from_fn(|i| rule.get(i).cloned().unwrap_or_default())
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    ptype: String,
    v0: String,
    v1: String,
    v2: String,
    v3: String,
    v4: String,
    v5: String,
}

impl RuleRow {
    fn values(self) -> Vec<String> {
        let mut values = vec![self.v0, self.v1, self.v2, self.v3, self.v4, self.v5];
        while values.last().is_some_and(String::is_empty) {
            values.pop();
        }
        values
    }
}

impl CasbinAdapter {
    async fn rows(&self) -> Result<Vec<RuleRow>, casbin::Error> {
        on_pool!(&self.store, pool => sqlx::query_as::<_, RuleRow>(SELECT_RULES)
        .fetch_all(pool)
        .await)
        .map_err(adapter_error)
    }

    async fn insert(&self, ptype: &str, rules: &[Vec<String>]) -> Result<bool, casbin::Error> {
        let mut inserted = false;
        for rule in rules {
            let v = columns(rule);
            let done = on_pool!(&self.store, pool => sqlx::query(INSERT_RULE)
            .bind(ptype).bind(&v[0]).bind(&v[1]).bind(&v[2]).bind(&v[3]).bind(&v[4]).bind(&v[5])
            .execute(pool)
            .await.map(|r| r.rows_affected()))
            .map_err(adapter_error)?;
            inserted |= done > 0;
        }
        Ok(inserted)
    }

    async fn delete(&self, ptype: &str, rule: &[String]) -> Result<bool, casbin::Error> {
        let v = columns(rule);
        let done = on_pool!(&self.store, pool => sqlx::query(DELETE_RULE)
        .bind(ptype).bind(&v[0]).bind(&v[1]).bind(&v[2]).bind(&v[3]).bind(&v[4]).bind(&v[5])
        .execute(pool)
        .await.map(|r| r.rows_affected()))
        .map_err(adapter_error)?;
        Ok(done > 0)
    }
}

fn section(ptype: &str) -> &str {
    if ptype.starts_with('g') { "g" } else { "p" }
}

#[async_trait]
impl Adapter for CasbinAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        self.filtered = false;
        for row in self.rows().await? {
            let ptype = row.ptype.clone();
            m.add_policy(section(&ptype), &ptype, row.values());
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        f: Filter<'a>,
    ) -> casbin::Result<()> {
        for row in self.rows().await? {
            let ptype = row.ptype.clone();
            let sec = section(&ptype);
            let values = row.values();
            let wanted = if sec == "p" { &f.p } else { &f.g };
            let keep = wanted
                .iter()
                .enumerate()
                .all(|(i, w)| w.is_empty() || values.get(i).map(String::as_str) == Some(*w));
            if keep {
                m.add_policy(sec, &ptype, values);
            } else {
                self.filtered = true;
            }
        }
        Ok(())
    }

    async fn save_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        self.clear_policy().await?;
        for sec in ["p", "g"] {
            let Some(assertions) = m.get_model().get(sec) else {
                continue;
            };
            for (ptype, assertion) in assertions {
                let rules: Vec<Vec<String>> = assertion.get_policy().iter().cloned().collect();
                self.insert(ptype, &rules).await?;
            }
        }
        Ok(())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        on_pool!(&self.store, pool => sqlx::query("DELETE FROM casbin_rule").execute(pool).await.map(|r| r.rows_affected()))
            .map_err(adapter_error)?;
        Ok(())
    }

    fn is_filtered(&self) -> bool {
        self.filtered
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.insert(ptype, &[rule]).await
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        self.insert(ptype, &rules).await
    }

    async fn remove_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.delete(ptype, &rule).await
    }

    async fn remove_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let mut removed = false;
        for rule in rules {
            removed |= self.delete(ptype, &rule).await?;
        }
        Ok(removed)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        let mut removed = false;
        for row in self.rows().await? {
            if row.ptype != ptype {
                continue;
            }
            let values = row.values();
            let hit = field_values
                .iter()
                .enumerate()
                .all(|(i, want)| want.is_empty() || values.get(field_index + i) == Some(want));
            if hit {
                removed |= self.delete(ptype, &values).await?;
            }
        }
        Ok(removed)
    }
}
