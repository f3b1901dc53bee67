//! The API under `/api/v1`, one module per subject. Every handler authorizes through the
//! broker, which asks `policy`.

mod alerts;
mod events;
mod inventory;
mod meta;
mod quarantines;
mod recordings;
mod requests;
mod session;
mod users;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Every endpoint with its OpenAPI description.
pub(crate) fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(meta::routes())
        .merge(session::routes())
        .merge(users::routes())
        .merge(inventory::routes())
        .merge(requests::routes())
        .merge(quarantines::routes())
        .merge(events::routes())
        .merge(recordings::routes())
        .merge(alerts::routes())
}
