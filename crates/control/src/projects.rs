//! `/api/v1/projects`: shared projects and their members. Viewers read a project's
//! modules; developers also upload, invoke and manage routes; owners also manage
//! members. Every user has a personal project (`~name`) it owns.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use edgefn_store::{Actor, Member, Project};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Caller;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::modules::check_label;
use crate::openapi::Failure;
use crate::state::AppState;

/// Member roles.
pub(crate) const ROLES: [&str; 3] = ["owner", "developer", "viewer"];

/// Body of `POST /api/v1/projects`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProjectBody {
    /// Project name (not starting with `~`, which personal projects use).
    name: String,
}

/// Projects.
#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    projects: Vec<Project>,
}

/// A project with its members.
#[derive(Serialize, ToSchema)]
pub struct ProjectWithMembers {
    #[serde(flatten)]
    project: Project,
    members: Vec<Member>,
}

/// `POST /api/v1/projects`: a shared project the caller owns.
#[utoipa::path(post, path = "/api/v1/projects", tag = "identity", request_body = NewProjectBody,
    responses((status = 201, description = "The project, owned by the caller", body = Project), Failure))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewProjectBody>,
) -> Result<(StatusCode, Json<Project>), ApiError> {
    Ok((StatusCode::CREATED, Json(add_project(&state, &caller, &body.name).await?)))
}

/// A shared project the caller owns.
pub(crate) async fn add_project(state: &AppState, caller: &Caller, name: &str) -> Result<Project, ApiError> {
    check_label("project name", name)?;
    Ok(state.db.create_project(&Actor::from(&caller.user), name, &caller.user.id).await?)
}

/// The caller's projects (admins: all).
pub(crate) async fn visible_projects(state: &AppState, caller: &Caller) -> Result<Vec<Project>, ApiError> {
    let mut projects = state.db.projects().await?;
    projects.retain(|p| caller.user.is_admin() || caller.roles.contains_key(&p.id));
    Ok(projects)
}

/// `GET /api/v1/projects`: the caller's projects (admins: all).
#[utoipa::path(get, path = "/api/v1/projects", tag = "identity", responses((status = 200, description = "The caller's projects (all, for admins)", body = ProjectList), Failure))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<ProjectList>, ApiError> {
    Ok(Json(ProjectList { projects: visible_projects(&state, &caller).await? }))
}

/// The project `key` names, if the caller is a member (or an admin); 404 otherwise.
pub(crate) async fn visible(state: &AppState, caller: &Caller, key: &str) -> Result<Project, ApiError> {
    let project = state.db.project(key).await?;
    if caller.user.is_admin() || caller.roles.contains_key(&project.id) {
        Ok(project)
    } else {
        Err(ApiError::not_found(format!("project {key} not found")))
    }
}

/// The project, checked that the caller may manage its members.
async fn managed(state: &AppState, caller: &Caller, key: &str) -> Result<Project, ApiError> {
    let project = visible(state, caller, key).await?;
    if caller.user.is_admin() || caller.roles.get(&project.id).is_some_and(|r| r == "owner") {
        Ok(project)
    } else {
        Err(ApiError::forbidden(format!("only owners of project {} manage its members", project.name)))
    }
}

/// `GET /api/v1/projects/{id}`: the project and its members.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "identity", params(("id" = String, Path, description = "Project id or name")),
    responses((status = 200, description = "The project and its members", body = ProjectWithMembers), Failure))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<ProjectWithMembers>, ApiError> {
    let project = visible(&state, &caller, &id).await?;
    let members = state.db.members(&project.id).await?;
    Ok(Json(ProjectWithMembers { project, members }))
}

/// Body of `PUT /api/v1/projects/{id}/members/{user}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// `owner`, `developer` or `viewer`.
    role: String,
}

/// `PUT /api/v1/projects/{id}/members/{user}`: adds a member or changes its role.
#[utoipa::path(put, path = "/api/v1/projects/{id}/members/{user}", tag = "identity",
    params(("id" = String, Path, description = "Project id or name"), ("user" = String, Path, description = "User id or name")),
    request_body = MemberBody, responses((status = 200, description = "The membership", body = Member), Failure))]
pub async fn put_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<MemberBody>,
) -> Result<Json<Member>, ApiError> {
    Ok(Json(set_member(&state, &caller, &id, &user, &body.role).await?))
}

/// Adds `user` to project `id` as `role`, or changes its role (owners and admins).
pub(crate) async fn set_member(state: &AppState, caller: &Caller, id: &str, user: &str, role: &str) -> Result<Member, ApiError> {
    if !ROLES.contains(&role) {
        return Err(ApiError::bad_request(format!("role `{role}` is not one of {}", ROLES.join(", "))));
    }
    let project = managed(state, caller, id).await?;
    let user = state.db.user(user).await?;
    if project.personal_of.as_deref() == Some(user.id.as_str()) && role != "owner" {
        return Err(ApiError::bad_request("the owner of a personal project stays its owner"));
    }
    Ok(state.db.set_member(&Actor::from(&caller.user), &project.id, &user.id, role).await?)
}

/// `DELETE /api/v1/projects/{id}/members/{user}`.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{user}", tag = "identity",
    params(("id" = String, Path, description = "Project id or name"), ("user" = String, Path, description = "User id or name")),
    responses((status = 204, description = "Removed"), Failure))]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    drop_member(&state, &caller, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `user` from project `id` (owners and admins); a project keeps an owner.
pub(crate) async fn drop_member(state: &AppState, caller: &Caller, id: &str, user: &str) -> Result<(), ApiError> {
    let project = managed(state, caller, id).await?;
    let user = state.db.user(user).await?;
    if project.personal_of.as_deref() == Some(user.id.as_str()) {
        return Err(ApiError::bad_request("the owner of a personal project cannot be removed from it"));
    }
    let members = state.db.members(&project.id).await?;
    let owners = members.iter().filter(|m| m.role == "owner").count();
    if owners == 1 && members.iter().any(|m| m.user_id == user.id && m.role == "owner") {
        return Err(ApiError::bad_request("a project keeps at least one owner"));
    }
    state.db.remove_member(&Actor::from(&caller.user), &project.id, &user.id).await?;
    Ok(())
}
