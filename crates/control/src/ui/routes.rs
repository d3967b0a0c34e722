//! The routes page: every route to a module the caller may read, with an "open" link to
//! the edge node, and — for the routes the caller may change — forms to add, edit and
//! delete them. The forms go through the same functions as the API (`add_route`,
//! `remove_route`), so they make the same checks and give the same errors, shown above
//! the form that caused them with what was typed kept. Editing a route replaces it: the
//! new one is added (nothing changes if that fails), then the old one removed.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use edgefn_store::{ModuleFilter, Route};
use maud::{Markup, html};
use serde::Deserialize;

use super::format::time;
use super::layout::Nav;
use super::session::Session;
use crate::access::{Op, decide};
use crate::error::ApiError;
use crate::modules::visible_modules;
use crate::routes::{RouteBody, add_route, readable, remove_route, visible_routes};
use crate::state::AppState;

/// The route form, as sent.
#[derive(Deserialize, Default, Clone)]
pub struct RouteForm {
    #[serde(default)]
    path: String,
    #[serde(default, rename = "match")]
    match_kind: String,
    #[serde(default)]
    host: String,
    /// Comma- or space-separated.
    #[serde(default)]
    methods: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    module: String,
    #[serde(default)]
    version: String,
}

impl RouteForm {
    fn of(route: &Route) -> Self {
        Self {
            path: route.path.clone(),
            match_kind: route.match_kind.clone(),
            host: route.host.clone().unwrap_or_default(),
            methods: route.methods.join(", "),
            priority: route.priority.to_string(),
            module: route.module_id.clone(),
            version: route.version.clone().unwrap_or_default(),
        }
    }

    fn body(&self) -> Result<RouteBody, ApiError> {
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let priority = match self.priority.trim() {
            "" => None,
            p => Some(p.parse::<i64>().map_err(|_| ApiError::bad_request(format!("priority `{p}` is not a whole number")))?),
        };
        let methods: Vec<String> = self.methods.split([',', ' ']).map(str::trim).filter(|m| !m.is_empty()).map(str::to_string).collect();
        Ok(RouteBody {
            host: text(&self.host),
            path: self.path.trim().to_string(),
            match_kind: text(&self.match_kind),
            methods: Some(methods),
            priority,
            pop_selector: None,
            module_id: self.module.clone(),
            version: text(&self.version),
        })
    }
}

/// `GET /routes`.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let body = page(&state, &session, &RouteForm::default(), None).await;
    session.render(Nav::Routes, "Routes", body)
}

/// `POST /routes`: adds a route.
pub async fn create(State(state): State<AppState>, session: Session, Form(form): Form<RouteForm>) -> Response {
    let added = async { add_route(&state, &session.caller, form.body()?).await };
    match added.await {
        Ok(_) => Redirect::to("/routes").into_response(),
        Err(e) => {
            let status = e.status();
            (status, session.render(Nav::Routes, "Routes", page(&state, &session, &form, Some(e)).await)).into_response()
        }
    }
}

/// `GET /routes/{id}/edit`.
pub async fn edit_form(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let body = async {
        let route = readable(&state, &session.caller, &id, Op::Route).await?;
        edit_page(&state, &session, &route, &RouteForm::of(&route), None).await
    };
    session.render(Nav::Routes, "Edit a route", body.await)
}

/// `POST /routes/{id}/edit`: replaces the route with the one the form describes.
pub async fn edit(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<RouteForm>) -> Response {
    let route = match readable(&state, &session.caller, &id, Op::Route).await {
        Ok(route) => route,
        Err(e) => return session.failure(Nav::Routes, e),
    };
    let replaced = async {
        add_route(&state, &session.caller, form.body()?).await?;
        remove_route(&state, &session.caller, &id).await
    };
    match replaced.await {
        Ok(()) => Redirect::to("/routes").into_response(),
        Err(e) => {
            let status = e.status();
            (status, session.render(Nav::Routes, "Edit a route", edit_page(&state, &session, &route, &form, Some(e)).await)).into_response()
        }
    }
}

/// `POST /routes/{id}/delete`.
pub async fn delete(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    match remove_route(&state, &session.caller, &id).await {
        Ok(()) => Redirect::to("/routes").into_response(),
        Err(e) => session.failure(Nav::Routes, e),
    }
}

async fn page(state: &AppState, session: &Session, form: &RouteForm, error: Option<ApiError>) -> Result<Markup, ApiError> {
    let routes = visible_routes(state, &session.caller).await?;
    let edge = state.edge_url.get();
    let mut rows = Vec::new();
    for route in routes {
        let module = state.db.module(&route.module_id).await?;
        let may_change = decide(&session.caller, &module, Op::Route).is_ok();
        rows.push((route, module.name, may_change));
    }
    // Claims held for review, shown to admins: their routes do not serve until one decides.
    let held: Vec<_> = match session.caller.user.is_admin() {
        true => state.db.held_claims().await?,
        false => Vec::new(),
    };
    Ok(html! {
        @if !held.is_empty() {
            section.outcome.failed #held aria-labelledby="held-title" {
                h2 #held-title { (held.len()) " claims do not serve until an admin keeps or removes them" }
                p { "The host and path rules refuse them (an older install allowed them). Keep one with "
                    code { "POST /api/v1/claims/{id}/keep" } ", or delete its routes and the claim." }
                ul { @for c in &held {
                    li { code { @if c.host.is_empty() { (c.path_prefix) " on the default host" } @else { (c.host) } }
                        " (claim " (c.id) "): " (c.held.as_deref().unwrap_or("")) }
                } }
            }
        }
        p { "Requests to the edge node go to the route with the highest priority that matches; among equals, the most specific, then the oldest. "
            "Changes reach the nodes within milliseconds." }
        @if rows.is_empty() {
            p.empty { "No routes to modules you can see." }
        } @else {
            div.scroll { table {
                caption { (rows.len()) " routes" }
                thead { tr { th scope="col" { "Path" } th scope="col" { "Match" } th scope="col" { "Host" } th scope="col" { "Methods" }
                    th scope="col" { "Priority" } th scope="col" { "Module" } th scope="col" { "Version" } th scope="col" { "Created" } th scope="col" { "Actions" } } }
                tbody {
                    @for (r, name, may_change) in &rows {
                        tr {
                            th scope="row" { code { (r.path) } }
                            td { (r.match_kind) }
                            td { (r.host.as_deref().unwrap_or("any")) }
                            td { @if r.methods.is_empty() { "any" } @else { (r.methods.join(", ")) } }
                            td { (r.priority) }
                            td { a href={ "/modules/" (r.module_id) } { (name) } }
                            td { (r.version.as_deref().unwrap_or("latest")) }
                            td { (time(r.created_at)) }
                            td.actions {
                                @if let (Some(edge), true) = (edge, r.host.is_none() && r.match_kind != "regex") {
                                    a href={ (edge) (r.path) } { "Open" } " "
                                }
                                @if *may_change {
                                    a href={ "/routes/" (r.id) "/edit" } aria-label={ "Edit the route " (r.path) } { "Edit" } " "
                                    form.inline method="post" action={ "/routes/" (r.id) "/delete" } {
                                        button.link type="submit" aria-label={ "Delete the route " (r.path) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        (route_form(state, session, "/routes", "Add a route", "Add", form, error).await?)
    })
}

async fn edit_page(
    state: &AppState,
    session: &Session,
    route: &Route,
    form: &RouteForm,
    error: Option<ApiError>,
) -> Result<Markup, ApiError> {
    Ok(html! {
        p { "Saving adds the route as changed and then removes " code { (route.path) } " (" (route.match_kind) "); if the change is refused, the route stays as it was. "
            a href="/routes" { "Back to routes" } }
        (route_form(state, session, &format!("/routes/{}/edit", route.id), "Change the route", "Save", form, error).await?)
    })
}

async fn route_form(
    state: &AppState,
    session: &Session,
    action: &str,
    title: &str,
    submit: &str,
    form: &RouteForm,
    error: Option<ApiError>,
) -> Result<Markup, ApiError> {
    let modules = visible_modules(state, &session.caller, ModuleFilter::default(), Op::Route).await?;
    if modules.is_empty() {
        return Ok(html! { p.empty { "You may not route to any module yet. " a href="/upload" { "Upload one" } "." } });
    }
    let match_kind = if form.match_kind.is_empty() { "exact" } else { form.match_kind.as_str() };
    Ok(html! {
        form.card method="post" action=(action) aria-labelledby="route-form" aria-describedby=[error.as_ref().map(|_| "route-error")] {
            h2 #route-form { (title) }
            @if let Some(e) = &error { p #route-error .error role="alert" { (e.message()) } }
            div.field {
                label for="route-path" { "Path" }
                input #route-path name="path" required value=(form.path) placeholder="/api" aria-invalid=[error.as_ref().map(|_| "true")];
            }
            div.field {
                label for="route-match" { "Match" }
                select #route-match name="match" {
                    @for (value, label) in [("exact", "exactly this path"), ("prefix", "this path and everything under it"), ("regex", "a regular expression")] {
                        option value=(value) selected[value == match_kind] { (label) }
                    }
                }
            }
            div.field {
                label for="route-module" { "Module" }
                select #route-module name="module" {
                    @for m in &modules { option value=(m.id) selected[m.id == form.module || m.name == form.module] { (m.name) } }
                }
            }
            div.field {
                label for="route-version" { "Version (empty: always the newest)" }
                input #route-version name="version" value=(form.version);
            }
            div.field {
                label for="route-host" { "Host (empty: any)" }
                input #route-host name="host" value=(form.host) placeholder="api.example.com";
            }
            div.field {
                label for="route-methods" { "Methods (empty: any)" }
                input #route-methods name="methods" value=(form.methods) placeholder="GET, POST";
            }
            div.field {
                label for="route-priority" { "Priority (higher wins)" }
                input #route-priority name="priority" inputmode="numeric" value=(form.priority) placeholder="0";
            }
            button type="submit" { (submit) }
        }
    })
}
