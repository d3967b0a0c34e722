//! The frame of every page: skip link, navigation, who is signed in, and error pages.

use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use crate::error::ApiError;

/// The navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Modules,
    Upload,
    Run,
    Routes,
    Builds,
    Deployments,
    Nodes,
    Tokens,
    Projects,
    Users,
    Audit,
    None,
}

impl Nav {
    /// Whether only admins get this entry.
    fn admins_only(self) -> bool {
        matches!(self, Nav::Users | Nav::Audit)
    }
}

const ENTRIES: [(Nav, &str, &str); 11] = [
    (Nav::Modules, "Modules", "/"),
    (Nav::Upload, "Upload", "/upload"),
    (Nav::Run, "Run", "/run"),
    (Nav::Routes, "Routes", "/routes"),
    (Nav::Builds, "Builds", "/builds"),
    (Nav::Deployments, "Deployments", "/deployments"),
    (Nav::Nodes, "Nodes", "/nodes"),
    (Nav::Tokens, "Tokens", "/tokens"),
    (Nav::Projects, "Projects", "/projects"),
    (Nav::Users, "Users", "/users"),
    (Nav::Audit, "Audit log", "/audit"),
];

/// A whole page titled `title`, with `body` as its main content.
pub(crate) fn page(session: Option<&Session>, current: Nav, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · edgefn" }
                link rel="stylesheet" href="/ui/ui.css";
                script src="/ui/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "edgefn" }
                    @if let Some(session) = session {
                        @let user = &session.caller.user;
                        nav aria-label="Main" {
                            ul {
                                @for (nav, label, href) in ENTRIES {
                                    @if !nav.admins_only() || user.is_admin() {
                                        li { a href=(href) aria-current=[(nav == current).then_some("page")] { (label) } }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong #who { (user.name) } " " span.badge.role { (user.role) } }
                            form method="post" action="/sign-out" { button.link type="submit" { "Sign out" } }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

impl Session {
    /// `body` as a page, or the page saying why it could not be shown.
    pub(crate) fn render(&self, nav: Nav, title: &str, body: Result<Markup, ApiError>) -> Response {
        match body {
            Ok(body) => page(Some(self), nav, title, body).into_response(),
            Err(err) => self.failure(nav, err),
        }
    }

    /// An error page with the error's status.
    pub(crate) fn failure(&self, nav: Nav, err: ApiError) -> Response {
        let title = match err.status().as_u16() {
            403 => "Not allowed",
            404 => "Not found",
            400..=499 => "Cannot do that",
            _ => "Something went wrong",
        };
        let body = html! {
            p.error role="alert" { (err.message()) " (HTTP " (err.status().as_u16()) ")" }
            p { a href="/" { "Back to modules" } }
        };
        (err.status(), page(Some(self), nav, title, body)).into_response()
    }
}

/// A small label: class, status, visibility.
pub(crate) fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "badge badge-" (kind) } { (text) } }
}

/// The badges of a module: class, visibility, status.
pub(crate) fn module_badges(module: &edgefn_store::Module) -> Markup {
    html! {
        (badge(&module.owner_type, &module.owner_type))
        " "
        @if module.is_public { (badge("public", "public")) } @else { (badge("private", "private")) }
        " "
        (badge(&module.status, &module.status))
    }
}
