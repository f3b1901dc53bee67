//! Health, presets, approval rules: what clients need to know before asking.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_policy::{LevelRule, Preset, PurdueLevel};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::Caller;

/// Liveness and what is running.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// otgate version.
    pub version: String,
    /// Storage backend.
    pub storage: String,
}

/// A scope preset.
#[derive(Serialize, ToSchema)]
pub struct PresetInfo {
    /// Name, for `scope: {"preset": ...}`.
    pub name: Preset,
    /// What it allows.
    pub summary: String,
}

/// The approval rule of one level.
#[derive(Serialize, ToSchema)]
pub struct LevelRuleInfo {
    /// Purdue level.
    pub level: PurdueLevel,
    /// The rule.
    #[serde(flatten)]
    pub rule: LevelRule,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(presets))
        .routes(routes!(rules))
}

/// Whether the server is up.
#[utoipa::path(get, path = "/health", tag = "meta", responses((status = 200, body = Health)))]
async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        storage: state.broker.backend().into(),
    })
}

/// Scope presets.
#[utoipa::path(get, path = "/presets", tag = "meta", security(("bearer" = [])), responses((status = 200, body = [PresetInfo])))]
async fn presets(_caller: Caller) -> ApiResult<Json<Vec<PresetInfo>>> {
    Ok(Json(
        Preset::ALL
            .into_iter()
            .map(|p| PresetInfo {
                name: p,
                summary: p.summary().into(),
            })
            .collect(),
    ))
}

/// Approval rules per Purdue level.
#[utoipa::path(get, path = "/rules", tag = "meta", security(("bearer" = [])), responses((status = 200, body = [LevelRuleInfo])))]
async fn rules(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<LevelRuleInfo>>> {
    Ok(Json(
        state
            .broker
            .rules()
            .levels()
            .map(|(level, rule)| LevelRuleInfo { level, rule })
            .collect(),
    ))
}
