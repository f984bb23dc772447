//! `/v1/profiles` and `/v1/track`: the users campaigns target, and the
//! events they did (Mixpanel's engage and track).

use super::described::{Routes, routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::answer;
use crate::Platform;
use crate::http::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Account, JsonOrList, Path};
use crate::profiles::{self, TrackOutcome};

type Answer = Result<Response, ApiError>;

pub(crate) fn routes() -> Routes {
    Routes::new()
        .routes(routes!(upsert))
        .routes(routes!(show, remove))
        .routes(routes!(track))
}

/// A profile as sent: Mixpanel's engage shape.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct ProfileInput {
    /// 1 to 255 bytes; a number is read as its digits.
    #[serde(rename = "$distinct_id")]
    #[schema(schema_with = id_text_or_number)]
    distinct_id: Value,
    /// Set on the profile (merged with what it has; `null` removes one).
    /// At most 16 KiB of JSON. `$set` is taken as well.
    #[serde(rename = "$properties", default)]
    #[schema(value_type = Object)]
    properties: Option<Map<String, Value>>,
}

/// `$distinct_id`: a string of 1 to 255 bytes, or a whole number.
fn id_text_or_number() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{OneOfBuilder, Type};
    use utoipa::openapi::{ObjectBuilder, RefOr, Schema};
    OneOfBuilder::new()
        .item(RefOr::<Schema>::T(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(profiles::MAX_ID))
                .into(),
        ))
        .item(RefOr::<Schema>::T(
            ObjectBuilder::new().schema_type(Type::Integer).into(),
        ))
        .build()
        .into()
}

/// One profile, or a list of up to 1,000.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ProfilesBody {
    /// 1 to 1,000.
    Many(Vec<ProfileInput>),
    One(ProfileInput),
}

#[derive(Serialize, utoipa::ToSchema)]
struct Upserted {
    /// Profiles written.
    updated: usize,
}

/// Set user profiles
///
/// Creates each profile, or sets the properties sent on it.
#[utoipa::path(post, operation_id = "upsert_profiles", path = "/v1/profiles", tag = "profile",
    request_body = ProfilesBody,
    responses((status = 200, description = "written", body = Upserted),
              (status = 422, description = "a profile is invalid: the message names it (`invalid_profile`)", body = ErrorBody)))]
async fn upsert(
    State(p): State<Arc<Platform>>,
    Account(a): Account,
    JsonOrList(body): JsonOrList<Value>,
) -> Answer {
    let updates = profiles::parse_profiles(&body)?;
    let updated = profiles::upsert(&p, &a, updates).await?;
    Ok(answer(StatusCode::OK, &Upserted { updated }))
}

/// A profile, as answered.
#[derive(Serialize, utoipa::ToSchema)]
struct ProfileView {
    #[serde(rename = "$distinct_id")]
    distinct_id: String,
    #[serde(rename = "$properties")]
    #[schema(value_type = Object)]
    properties: Map<String, Value>,
    /// Each event's count over the last 90 days.
    #[schema(value_type = Object)]
    events: BTreeMap<String, u64>,
    updated_at: DateTime<Utc>,
}

fn distinct(text: &str) -> Result<&str, ApiError> {
    if text.is_empty() || text.len() > profiles::MAX_ID {
        return Err(ApiError::not_found("profile"));
    }
    Ok(text)
}

/// Get a profile
#[utoipa::path(get, operation_id = "get_profile", path = "/v1/profiles/{distinct_id}", tag = "profile",
    params(("distinct_id" = String, Path, description = "its `$distinct_id`, URL-encoded")),
    responses((status = 200, description = "found", body = ProfileView),
              (status = 404, description = "no such profile", body = ErrorBody)))]
async fn show(
    State(p): State<Arc<Platform>>,
    Account(a): Account,
    Path(id): Path<String>,
) -> Answer {
    let found = profiles::get(&p, &a, distinct(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("profile"))?;
    let today = profiles::day_of(p.clock.now());
    let events = found
        .activity
        .keys()
        .map(|e| (e.clone(), found.count(e, profiles::WINDOW_DAYS, today)))
        .filter(|(_, n)| *n > 0)
        .collect();
    Ok(answer(
        StatusCode::OK,
        &ProfileView {
            distinct_id: found.distinct_id,
            properties: found.properties.unwrap_or_default(),
            events,
            updated_at: found.updated_at,
        },
    ))
}

/// Delete a profile (and its event counts)
#[utoipa::path(delete, operation_id = "delete_profile", path = "/v1/profiles/{distinct_id}", tag = "profile",
    params(("distinct_id" = String, Path, description = "its `$distinct_id`, URL-encoded")),
    responses((status = 204, description = "deleted"),
              (status = 404, description = "no such profile", body = ErrorBody)))]
async fn remove(
    State(p): State<Arc<Platform>>,
    Account(a): Account,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if profiles::delete(&p, &a, distinct(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("profile"))
    }
}

/// A tracked event: Mixpanel's track shape.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct TrackInput {
    /// Its name, 1 to 255 bytes.
    #[schema(min_length = 1, max_length = 255)]
    event: String,
    /// `distinct_id` (required) and `time` (Unix seconds or milliseconds;
    /// now when absent). Other properties are accepted and not kept: only
    /// the count per day is.
    #[schema(value_type = Object)]
    properties: Map<String, Value>,
}

/// One event, or a list of up to 1,000.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum TrackBody {
    /// 1 to 1,000.
    Many(Vec<TrackInput>),
    One(TrackInput),
}

/// Track events
///
/// Counts each event on its user's profile, per day, for targeting
/// (`did`, `count`) over the last 90 days.
#[utoipa::path(post, operation_id = "track_events", path = "/v1/track", tag = "profile",
    request_body = TrackBody,
    responses((status = 200, description = "counted", body = TrackOutcome),
              (status = 422, description = "an event is invalid: the message names it (`invalid_event`)", body = ErrorBody)))]
async fn track(
    State(p): State<Arc<Platform>>,
    Account(a): Account,
    JsonOrList(body): JsonOrList<Value>,
) -> Answer {
    let events = profiles::parse_track(&body, p.clock.now())?;
    let outcome = profiles::track(&p, &a, events).await?;
    Ok(answer(StatusCode::OK, &outcome))
}
