//! Zones, assets, inventory import, and the vault's listing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{Credential, NewCredential};
use otgate_policy::{Asset, AssetName, Inventory, Zone};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, Caller, name};

/// Whether a saved asset is new.
#[derive(Serialize, ToSchema)]
pub struct Saved {
    /// True when the asset did not exist before.
    pub created: bool,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(zones))
        .routes(routes!(list_assets, save_asset))
        .routes(routes!(show_asset))
        .routes(routes!(import))
        .routes(routes!(list_credentials, store_credential))
}

/// Every zone.
#[utoipa::path(get, path = "/zones", tag = "inventory", security(("bearer" = [])), responses((status = 200, body = [Zone])))]
async fn zones(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Zone>>> {
    Ok(Json(state.broker.zones().await?))
}

/// Assets in the zones where the caller holds a role.
#[utoipa::path(get, path = "/assets", tag = "inventory", security(("bearer" = [])), responses((status = 200, body = [Asset])))]
async fn list_assets(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Asset>>> {
    Ok(Json(state.broker.assets(&caller.principal).await?))
}

/// Adds or changes an asset (admins of its zone).
#[utoipa::path(post, path = "/assets", tag = "inventory", security(("bearer" = [])), request_body = Asset, responses(
    (status = 200, body = Saved), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_asset(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(asset): ApiJson<Asset>,
) -> ApiResult<Json<Saved>> {
    Ok(Json(Saved {
        created: state.broker.save_asset(&caller.principal, asset).await?,
    }))
}

/// One asset.
#[utoipa::path(get, path = "/assets/{name}", tag = "inventory", security(("bearer" = [])),
    params(("name" = String, Path, description = "asset name")),
    responses((status = 200, body = Asset), (status = 404, body = ErrorBody)))]
async fn show_asset(
    State(state): State<AppState>,
    caller: Caller,
    Path(asset): Path<String>,
) -> ApiResult<Json<Asset>> {
    let asset: AssetName = name(&asset)?;
    Ok(Json(state.broker.asset(&caller.principal, &asset).await?))
}

/// Imports zones and assets, all or nothing (admins of every zone).
#[utoipa::path(post, path = "/inventory", tag = "inventory", security(("bearer" = [])), request_body = Inventory, responses(
    (status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(inventory): ApiJson<Inventory>,
) -> ApiResult<StatusCode> {
    state
        .broker
        .import_inventory(&caller.principal, inventory)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Names and kinds of vaulted credentials (admins); never the secrets.
#[utoipa::path(get, path = "/vault", tag = "inventory", security(("bearer" = [])), responses((status = 200, body = [Credential]), (status = 403, body = ErrorBody)))]
async fn list_credentials(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<Credential>>> {
    Ok(Json(state.broker.credentials(&caller.principal).await?))
}

/// Stores an asset credential in the vault, encrypted (admins).
#[utoipa::path(post, path = "/vault", tag = "inventory", security(("bearer" = [])), request_body = NewCredential, responses(
    (status = 201, body = Credential), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn store_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewCredential>,
) -> ApiResult<(StatusCode, Json<Credential>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .broker
                .store_credential(&caller.principal, new)
                .await?,
        ),
    ))
}
