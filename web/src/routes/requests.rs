//! Requests, approvals, grants, credentials, revocation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use otgate_broker::{IssuedCertificate, IssuedToken, NewRequest, Request, RequestFilter};
use otgate_policy::{GrantId, UserName};

use crate::AppState;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, Caller, grant_id, name};

/// Why (for denials and revocations).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Shown to the vendor and kept for auditors.
    pub reason: String,
}

/// Which registered key to certify.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateBody {
    /// A `SHA256:` fingerprint or the public key line; optional when only one key is registered.
    #[serde(default)]
    pub key: Option<String>,
}

/// Grants revoked at once.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// Their ids.
    pub grants: Vec<GrantId>,
}

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_requests, create_request))
        .routes(routes!(show_request))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(withdraw))
        .routes(routes!(list_grants))
        .routes(routes!(show_grant))
        .routes(routes!(revoke))
        .routes(routes!(certificate))
        .routes(routes!(token))
        .routes(routes!(revoke_vendor))
}

/// Requests the caller may see, newest first.
#[utoipa::path(get, path = "/requests", tag = "requests", security(("bearer" = [])), params(RequestFilter), responses((status = 200, body = [Request])))]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<RequestFilter>,
) -> ApiResult<Json<Vec<Request>>> {
    Ok(Json(
        state.broker.requests(&caller.principal, &filter).await?,
    ))
}

/// Asks for access (vendors admitted to the asset's zone).
#[utoipa::path(post, path = "/requests", tag = "requests", security(("bearer" = [])), request_body = NewRequest, responses(
    (status = 201, body = Request), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(new): ApiJson<NewRequest>,
) -> ApiResult<(StatusCode, Json<Request>)> {
    Ok((
        StatusCode::CREATED,
        Json(state.broker.create_request(&caller.principal, new).await?),
    ))
}

/// One request.
#[utoipa::path(get, path = "/requests/{id}", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request id")), responses((status = 200, body = Request), (status = 404, body = ErrorBody)))]
async fn show_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Request>> {
    Ok(Json(
        state
            .broker
            .request(&caller.principal, grant_id(&id)?)
            .await?,
    ))
}

/// Approves (engineers of the zone; never one's own; each engineer once).
#[utoipa::path(post, path = "/requests/{id}/approve", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Request>> {
    Ok(Json(
        state
            .broker
            .approve(&caller.principal, grant_id(&id)?)
            .await?,
    ))
}

/// Denies a pending request (engineers of the zone).
#[utoipa::path(post, path = "/requests/{id}/deny", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request id")), request_body = Reason,
    responses((status = 200, body = Request), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reason>,
) -> ApiResult<Json<Request>> {
    Ok(Json(
        state
            .broker
            .deny(&caller.principal, grant_id(&id)?, &body.reason)
            .await?,
    ))
}

/// Withdraws the caller's pending request.
#[utoipa::path(post, path = "/requests/{id}/withdraw", tag = "requests", security(("bearer" = [])),
    params(("id" = i64, Path, description = "request id")),
    responses((status = 200, body = Request), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Request>> {
    Ok(Json(
        state
            .broker
            .withdraw(&caller.principal, grant_id(&id)?)
            .await?,
    ))
}

/// Grants the caller may see (approved requests, whatever happened since).
#[utoipa::path(get, path = "/grants", tag = "grants", security(("bearer" = [])), params(RequestFilter), responses((status = 200, body = [Request])))]
async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut filter): ApiQuery<RequestFilter>,
) -> ApiResult<Json<Vec<Request>>> {
    filter.grants = true;
    Ok(Json(
        state.broker.requests(&caller.principal, &filter).await?,
    ))
}

/// One grant.
#[utoipa::path(get, path = "/grants/{id}", tag = "grants", security(("bearer" = [])),
    params(("id" = i64, Path, description = "grant id")), responses((status = 200, body = Request), (status = 404, body = ErrorBody)))]
async fn show_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Request>> {
    let id = grant_id(&id)?;
    let request = state.broker.request(&caller.principal, id).await?;
    if request.grant().is_none() {
        return Err(otgate_broker::BrokerError::NotFound(format!(
            "request {id} is {} and not a grant",
            request.status
        ))
        .into());
    }
    Ok(Json(request))
}

/// Revokes a grant (engineers or admins of its zone); its sessions end.
#[utoipa::path(post, path = "/grants/{id}/revoke", tag = "grants", security(("bearer" = [])),
    params(("id" = i64, Path, description = "grant id")), request_body = Reason,
    responses((status = 200, body = Request), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reason>,
) -> ApiResult<Json<Request>> {
    Ok(Json(
        state
            .broker
            .revoke_grant(&caller.principal, grant_id(&id)?, &body.reason)
            .await?,
    ))
}

/// Issues an OpenSSH user certificate for the caller's grant and registered key.
#[utoipa::path(post, path = "/grants/{id}/certificate", tag = "grants", security(("bearer" = [])),
    params(("id" = i64, Path, description = "grant id")), request_body = CertificateBody,
    responses((status = 200, body = IssuedCertificate), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CertificateBody>,
) -> ApiResult<Json<IssuedCertificate>> {
    Ok(Json(
        state
            .broker
            .issue_certificate(&caller.principal, grant_id(&id)?, body.key.as_deref())
            .await?,
    ))
}

/// Issues a tunnel token (EdDSA JWT) for the caller's grant.
#[utoipa::path(post, path = "/grants/{id}/token", tag = "grants", security(("bearer" = [])),
    params(("id" = i64, Path, description = "grant id")),
    responses((status = 200, body = IssuedToken), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IssuedToken>> {
    Ok(Json(
        state
            .broker
            .issue_token(&caller.principal, grant_id(&id)?)
            .await?,
    ))
}

/// Revokes every live grant of a vendor, all or nothing.
#[utoipa::path(post, path = "/vendors/{name}/revoke", tag = "grants", security(("bearer" = [])),
    params(("name" = String, Path, description = "vendor user name")), request_body = Reason,
    responses((status = 200, body = Revoked), (status = 403, body = ErrorBody)))]
async fn revoke_vendor(
    State(state): State<AppState>,
    caller: Caller,
    Path(vendor): Path<String>,
    ApiJson(body): ApiJson<Reason>,
) -> ApiResult<Json<Revoked>> {
    let vendor: UserName = name(&vendor)?;
    Ok(Json(Revoked {
        grants: state
            .broker
            .revoke_vendor(&caller.principal, &vendor, &body.reason)
            .await?,
    }))
}
