//! Every refused request is an event: this middleware records a `refused` event for each 4xx
//! response (unless the broker recorded a more specific one) and gives responses produced
//! outside our handlers (unknown route, wrong method) the same JSON error body.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use otgate_policy::{Event, EventKind};

use crate::AppState;
use crate::error::{Refusal, generic};
use crate::extract::ActorSlot;

pub(crate) async fn record(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let slot = ActorSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().to_string();
    let path: String = request.uri().path().chars().take(256).collect();
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let mut response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let refusal = match response.extensions().get::<Refusal>().cloned() {
        Some(refusal) => refusal,
        None => {
            let error = generic(status);
            response = error.into_response();
            match response.extensions().get::<Refusal>().cloned() {
                Some(refusal) => refusal,
                None => return response,
            }
        }
    };
    if status.is_client_error() && !refusal.recorded {
        let event = Event::now(EventKind::Refused {
            method,
            path,
            status: status.as_u16(),
            code: refusal.code.to_owned(),
            message: refusal.message,
        })
        .by(slot.get())
        .from_addr(source);
        if let Err(e) = state.broker.record(event).await {
            tracing::error!(error = %e, "could not record a refusal");
        }
    }
    response
}
