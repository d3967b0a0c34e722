//! People and access: the caller's own API tokens (create with an expiry — the secret
//! shown once, with a copy button —, list, revoke); projects with their members (create;
//! owners add, change and remove members) and, for admins, users (create — its first token
//! shown once —, change the role, disable, enable). Every form goes through the API's own
//! functions (`issue_token`, `revoke`, `add_project`, `set_member`, `drop_member`,
//! `add_user`, `change_user`), so the permission checks and errors are the API's; a user who is not an admin is not shown the
//! users page, and is refused (403) when posting to it anyway.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use edgefn_store::{ApiToken, User};
use maud::{Markup, html};
use serde::Deserialize;

use super::format::time;
use super::layout::{Nav, badge};
use super::session::Session;
use crate::error::ApiError;
use crate::identity::{add_user, change_user, issue_token, revoke};
use crate::projects::{ROLES, add_project, drop_member, set_member, visible_projects};
use crate::state::AppState;

/// A page showing a secret is never kept by the browser or a proxy.
const NO_STORE: (axum::http::HeaderName, &str) = (axum::http::header::CACHE_CONTROL, "no-store");

/// A secret to show once, and whose it is.
struct Secret<'a> {
    what: &'a str,
    token: &'a str,
}

/// The new-token form.
#[derive(Deserialize, Default)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    /// Days; empty for never.
    #[serde(default)]
    expires_in_days: String,
}

/// `GET /tokens`.
pub async fn tokens(State(state): State<AppState>, session: Session) -> Response {
    let body = tokens_body(&state, &session, &TokenForm::default(), None, None).await;
    session.render(Nav::Tokens, "API tokens", body)
}

/// `POST /tokens`: a new token, its secret shown on the page this once.
pub async fn create_token(State(state): State<AppState>, session: Session, Form(form): Form<TokenForm>) -> Response {
    let issued = async {
        let days = match form.expires_in_days.trim() {
            "" => None,
            d => Some(d.parse::<i64>().map_err(|_| ApiError::bad_request(format!("`{d}` is not a whole number of days")))?),
        };
        issue_token(&state, &session.caller, &form.name, days, None).await
    };
    match issued.await {
        Ok((record, token)) => {
            let secret = Secret { what: &record.name, token: &token };
            let body = tokens_body(&state, &session, &TokenForm::default(), Some(secret), None).await;
            ([NO_STORE], session.render(Nav::Tokens, "API tokens", body)).into_response()
        }
        Err(e) => {
            let status = e.status();
            (status, session.render(Nav::Tokens, "API tokens", tokens_body(&state, &session, &form, None, Some(e)).await)).into_response()
        }
    }
}

/// `POST /tokens/{id}/revoke`.
pub async fn revoke_token(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    match revoke(&state, &session.caller, &id).await {
        // Revoking the token of this very session ends it at the next page.
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(e) => session.failure(Nav::Tokens, e),
    }
}

async fn tokens_body(
    state: &AppState,
    session: &Session,
    form: &TokenForm,
    secret: Option<Secret<'_>>,
    error: Option<ApiError>,
) -> Result<Markup, ApiError> {
    let tokens = state.db.tokens(Some(&session.caller.user.id)).await?;
    Ok(html! {
        @if let Some(secret) = secret { (show_once(&secret)) }
        (token_table(&tokens))
        form.card method="post" action="/tokens" aria-labelledby="new-token" aria-describedby=[error.as_ref().map(|_| "token-error")] {
            h2 #new-token { "New token" }
            @if let Some(e) = &error { p #token-error .error role="alert" { (e.message()) } }
            div.field {
                label for="token-name" { "What it is for" }
                input #token-name name="name" required maxlength="100" value=(form.name) placeholder="CI deploys" aria-invalid=[error.as_ref().map(|_| "true")];
            }
            div.field {
                label for="token-days" { "Expires after (days; empty: never)" }
                input #token-days name="expires_in_days" inputmode="numeric" value=(form.expires_in_days);
            }
            button type="submit" { "Create token" }
        }
    })
}

fn token_table(tokens: &[ApiToken]) -> Markup {
    let now = edgefn_store::now_ms();
    html! {
        @if tokens.is_empty() {
            p.empty { "No tokens." }
        } @else {
            div.scroll { table {
                caption { "Your tokens" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "Expires" } th scope="col" { "State" } th scope="col" { "Revoke" } } }
                tbody {
                    @for t in tokens {
                        @let live = t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now);
                        tr {
                            th scope="row" { (t.name) }
                            td { (time(t.created_at)) }
                            td { (t.expires_at.map_or_else(|| "never".to_string(), time)) }
                            td { @if let Some(r) = t.revoked_at { "revoked " (time(r)) } @else if live { (badge("active", "active")) } @else { "expired" } }
                            td { @if live {
                                form.inline method="post" action={ "/tokens/" (t.id) "/revoke" } {
                                    button.link type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                                }
                            } }
                        }
                    }
                }
            } }
        }
    }
}

/// A secret shown this once, selectable, with a copy button (which needs JavaScript; the
/// text can be copied without it).
fn show_once(secret: &Secret<'_>) -> Markup {
    html! {
        section.outcome aria-labelledby="secret" {
            h2 #secret { "The token for " (secret.what) }
            p { "Copy it now: it is not shown again. Sign in with it, or send it as " code { "Authorization: Bearer …" } "." }
            p.secret { code #new-secret { (secret.token) } " " button type="button" data-copy="#new-secret" { "Copy" } }
        }
    }
}

/// The new-user form.
#[derive(Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// A change of a user: a role, or disable/enable.
#[derive(Deserialize)]
pub struct UserChange {
    role: Option<String>,
    disabled: Option<bool>,
}

/// `GET /users` (admins).
pub async fn users(State(state): State<AppState>, session: Session) -> Response {
    let body = users_body(&state, &session, &UserForm::default(), None, None).await;
    session.render(Nav::Users, "Users", body)
}

/// `POST /users` (admins): a user and its first token, shown once.
pub async fn create_user(State(state): State<AppState>, session: Session, Form(form): Form<UserForm>) -> Response {
    let role = Some(form.role.as_str()).filter(|r| !r.is_empty());
    match add_user(&state, &session.caller, form.name.trim(), role).await {
        Ok((user, token, _)) => {
            let what = format!("{} (their first)", user.name);
            let secret = Secret { what: &what, token: &token };
            let body = users_body(&state, &session, &UserForm::default(), Some(secret), None).await;
            ([NO_STORE], session.render(Nav::Users, "Users", body)).into_response()
        }
        Err(e) => {
            let status = e.status();
            (status, session.render(Nav::Users, "Users", users_body(&state, &session, &form, None, Some(e)).await)).into_response()
        }
    }
}

/// `POST /users/{id}` (admins): changes the role, or disables or enables the user.
pub async fn change(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<UserChange>) -> Response {
    match change_user(&state, &session.caller, &id, form.role.as_deref(), form.disabled).await {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => session.failure(Nav::Users, e),
    }
}

async fn users_body(
    state: &AppState,
    session: &Session,
    form: &UserForm,
    secret: Option<Secret<'_>>,
    error: Option<ApiError>,
) -> Result<Markup, ApiError> {
    session.caller.require_admin("manage users")?;
    let users = state.db.users().await?;
    Ok(html! {
        @if let Some(secret) = secret { (show_once(&secret)) }
        (user_table(&users, &session.caller.user))
        form.card method="post" action="/users" aria-labelledby="new-user" aria-describedby=[error.as_ref().map(|_| "user-error")] {
            h2 #new-user { "New user" }
            @if let Some(e) = &error { p #user-error .error role="alert" { (e.message()) } }
            div.field {
                label for="user-name" { "Name" }
                input #user-name name="name" required value=(form.name) aria-invalid=[error.as_ref().map(|_| "true")];
            }
            div.field {
                label for="user-role" { "Role" }
                select #user-role name="role" {
                    option value="user" selected[form.role != "admin"] { "user" }
                    option value="admin" selected[form.role == "admin"] { "admin" }
                }
            }
            button type="submit" { "Create user" }
        }
    })
}

fn user_table(users: &[User], me: &User) -> Markup {
    html! {
        div.scroll { table {
            caption { (users.len()) " users" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "State" } th scope="col" { "Created" } th scope="col" { "Change" } } }
            tbody {
                @for u in users {
                    tr {
                        th scope="row" { (u.name) }
                        td { (badge("role", &u.role)) }
                        td { @if u.disabled { "disabled" } @else { "active" } }
                        td { (time(u.created_at)) }
                        td {
                            @if u.id != me.id {
                                form.inline method="post" action={ "/users/" (u.id) } {
                                    @if u.is_admin() {
                                        input type="hidden" name="role" value="user";
                                        button.link type="submit" aria-label={ "Make " (u.name) " a user" } { "Make user" }
                                    } @else {
                                        input type="hidden" name="role" value="admin";
                                        button.link type="submit" aria-label={ "Make " (u.name) " an admin" } { "Make admin" }
                                    }
                                }
                                " "
                                form.inline method="post" action={ "/users/" (u.id) } {
                                    input type="hidden" name="disabled" value=(if u.disabled { "false" } else { "true" });
                                    button.link type="submit" aria-label={ (if u.disabled { "Enable " } else { "Disable " }) (u.name) } {
                                        (if u.disabled { "Enable" } else { "Disable" })
                                    }
                                }
                            } @else { "(you)" }
                        }
                    }
                }
            }
        } }
    }
}

/// The new-project form.
#[derive(Deserialize, Default)]
pub struct ProjectForm {
    #[serde(default)]
    name: String,
}

/// A membership change: add `user` (or change its role) as `role`, or remove it.
#[derive(Deserialize, Default)]
pub struct MemberForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    remove: Option<String>,
}

/// `GET /projects`: the caller's projects (admins: all) with their members.
pub async fn projects(State(state): State<AppState>, session: Session) -> Response {
    let body = projects_body(&state, &session, &ProjectForm::default(), None).await;
    session.render(Nav::Projects, "Projects", body)
}

/// `POST /projects`: a shared project the caller owns.
pub async fn create_project(State(state): State<AppState>, session: Session, Form(form): Form<ProjectForm>) -> Response {
    match add_project(&state, &session.caller, form.name.trim()).await {
        Ok(_) => Redirect::to("/projects").into_response(),
        Err(e) => {
            let status = e.status();
            let body = projects_body(&state, &session, &form, Some((None, e))).await;
            (status, session.render(Nav::Projects, "Projects", body)).into_response()
        }
    }
}

/// `POST /projects/{id}/members`: adds, changes or removes a member (owners and admins).
pub async fn member(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<MemberForm>) -> Response {
    let changed = match &form.remove {
        Some(user) => drop_member(&state, &session.caller, &id, user).await,
        None => set_member(&state, &session.caller, &id, form.user.trim(), &form.role).await.map(drop),
    };
    match changed {
        Ok(()) => Redirect::to("/projects").into_response(),
        Err(e) => {
            let status = e.status();
            let body = projects_body(&state, &session, &ProjectForm::default(), Some((Some(id), e))).await;
            (status, session.render(Nav::Projects, "Projects", body)).into_response()
        }
    }
}

/// The projects, and the error of the form that failed (`None`: the new-project form).
async fn projects_body(
    state: &AppState,
    session: &Session,
    form: &ProjectForm,
    error: Option<(Option<String>, ApiError)>,
) -> Result<Markup, ApiError> {
    let caller = &session.caller;
    let projects = visible_projects(state, caller).await?;
    let error_for = |key: Option<&str>| error.as_ref().filter(|(p, _)| p.as_deref() == key).map(|(_, e)| e.message().to_string());
    let mut shown = Vec::new();
    for project in projects {
        let members = state.db.members(&project.id).await?;
        let manages = caller.user.is_admin() || caller.roles.get(&project.id).is_some_and(|r| r == "owner");
        shown.push((project, members, manages));
    }
    Ok(html! {
        p { "Members of a project share its modules: viewers read them; developers also upload, run and route; owners also manage members." }
        @for (project, members, manages) in &shown {
            section.card aria-labelledby={ "project-" (project.id) } {
                h2 #{ "project-" (project.id) } { (project.name) @if project.personal_of.is_some() { " " (badge("private", "personal")) } }
                @if let Some(e) = error_for(Some(project.id.as_str())) {
                    p.error role="alert" id={ "members-error-" (project.id) } { (e) }
                }
                table {
                    caption { (members.len()) " members" }
                    thead { tr { th scope="col" { "User" } th scope="col" { "Role" } @if *manages { th scope="col" { "Remove" } } } }
                    tbody {
                        @for m in members {
                            tr {
                                th scope="row" { (m.user_name) }
                                td { (m.role) }
                                @if *manages { td {
                                    form.inline method="post" action={ "/projects/" (project.id) "/members" } {
                                        input type="hidden" name="remove" value=(m.user_id);
                                        button.link type="submit" aria-label={ "Remove " (m.user_name) " from " (project.name) } { "Remove" }
                                    }
                                } }
                            }
                        }
                    }
                }
                @if *manages {
                    form.inline method="post" action={ "/projects/" (project.id) "/members" } {
                        label for={ "member-" (project.id) } { "User" }
                        input id={ "member-" (project.id) } name="user" required;
                        label for={ "role-" (project.id) } { "Role" }
                        select id={ "role-" (project.id) } name="role" {
                            @for role in ROLES { option value=(role) selected[role == "developer"] { (role) } }
                        }
                        button type="submit" { "Add or change" }
                    }
                }
            }
        }
        form.card method="post" action="/projects" aria-labelledby="new-project" {
            h2 #new-project { "New project" }
            @if let Some(e) = error_for(None) { p #project-error .error role="alert" { (e) } }
            div.field {
                label for="project-name" { "Name" }
                input #project-name name="name" required value=(form.name);
            }
            button type="submit" { "Create project" }
        }
    })
}
