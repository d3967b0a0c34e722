//! The builds pages: send a project's sources (a `.tar.gz`) to the build workers, the
//! newest builds, and one build with its log — reloaded every two seconds until it ends.

use axum::extract::{Path, Request, State};
use axum::http::header::HeaderName;
use axum::response::{IntoResponse, Redirect, Response};
use edgefn_store::{Build, BuildStatus};
use maud::{Markup, html};

use super::format::{bytes, time};
use super::layout::{Nav, badge, page};
use super::session::Session;
use crate::body::read_upload;
use crate::builds::{MAX_ARCHIVE_BYTES, newest, queue, visible};
use crate::error::ApiError;
use crate::modules::Upload;
use crate::state::AppState;

/// `GET /builds`: the form and the newest builds.
pub async fn list(State(state): State<AppState>, session: Session) -> Response {
    let builds = newest(&state, &session.caller).await;
    session.render(Nav::Builds, "Builds", builds.map(|b| body(&b, None)))
}

/// `POST /builds` (multipart: `file`, `name`, `version`, `toolchain`): queues the build
/// and shows it, or the list again with the reason.
pub async fn submit(State(state): State<AppState>, session: Session, req: Request) -> Response {
    let queued = async {
        let upload = read_upload(req, MAX_ARCHIVE_BYTES).await?;
        let field = |key: &str| upload.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
        let what = Upload {
            name: field("name").ok_or_else(|| ApiError::bad_request("name the module to make"))?,
            version: field("version").unwrap_or_else(|| "1.0.0".into()),
            description: None,
            owner_type: None,
            project: None,
            timeout_ms: None,
        };
        queue(&state, &session.caller, what, field("toolchain").as_deref(), upload.bytes).await
    };
    match queued.await {
        Ok(build) => Redirect::to(&format!("/builds/{}", build.id)).into_response(),
        Err(err) => {
            let builds = newest(&state, &session.caller).await.unwrap_or_default();
            (err.status(), page(Some(&session), Nav::Builds, "Builds", body(&builds, Some(err.message())))).into_response()
        }
    }
}

fn body(builds: &[Build], error: Option<&str>) -> Markup {
    html! {
        p { "A build worker builds a project from its sources in a sandbox and makes the result a module version, as an upload would. "
            "From a terminal: " code { "edgefn deploy --remote" } " in a project made by " code { "edgefn new" } "." }
        @if let Some(message) = error { p.error role="alert" { (message) } }
        form.card method="post" action="/builds" enctype="multipart/form-data" {
            div.field {
                label for="file" { "Sources (.tar.gz)" }
                input #file type="file" name="file" accept=".tar.gz,.tgz,application/gzip" required aria-describedby="file-hint";
                p #file-hint .hint { "The project's directory, its files at the root: " code { "tar -czf src.tgz -C my-function ." }
                    " (Cargo.toml → Rust, package.json → JavaScript/TypeScript, asconfig.json → AssemblyScript). At most "
                    (bytes(MAX_ARCHIVE_BYTES as u64)) "." }
            }
            div.field {
                label for="name" { "Module name" }
                input #name type="text" name="name" required maxlength="64" pattern="[A-Za-z0-9][A-Za-z0-9._+\\-]*";
            }
            div.field {
                label for="version" { "Version" }
                input #version type="text" name="version" value="1.0.0" required maxlength="64";
            }
            div.field {
                label for="toolchain" { "Toolchain" }
                select #toolchain name="toolchain" {
                    option value="" selected { "from the project's files" }
                    @for t in edgefn_store::Toolchain::ALL { option value=(t.as_str()) { (t.as_str()) } }
                }
            }
            button type="submit" { "Build" }
        }
        @if builds.is_empty() {
            p.empty { "No builds yet." }
        } @else {
            div.scroll { table {
                caption { "Newest first" }
                thead { tr { th scope="col" { "Build" } th scope="col" { "Module" } th scope="col" { "Toolchain" }
                    th scope="col" { "Status" } th scope="col" { "Queued" } th scope="col" { "Error" } } }
                tbody {
                    @for b in builds {
                        tr {
                            th scope="row" { a href={ "/builds/" (b.id) } { code { (b.id.get(..8).unwrap_or(&b.id)) } } }
                            td { (b.name) " " (b.version) }
                            td { (b.toolchain.as_str()) }
                            td { (status(b.status)) }
                            td { (time(b.created_at)) }
                            td { (b.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
        }
    }
}

fn status(status: BuildStatus) -> Markup {
    let kind = match status {
        BuildStatus::Succeeded => "active",
        BuildStatus::Failed => "error",
        BuildStatus::Queued | BuildStatus::Running => "uploading",
    };
    badge(kind, status.as_str())
}

/// `GET /builds/{id}`: the build and its whole log; reloaded every two seconds (the
/// `Refresh` header) until it ends.
pub async fn show(State(state): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let shown = async {
        let build = visible(&state, &session.caller, &id).await?;
        let log: String = state.db.build_log(&id, 0).await?.into_iter().map(|(_, chunk)| chunk).collect();
        Ok::<_, ApiError>((build, log))
    };
    let (build, log) = match shown.await {
        Ok(shown) => shown,
        Err(err) => return session.failure(Nav::Builds, err),
    };
    let title = format!("Build of {} {}", build.name, build.version);
    let markup = html! {
        dl.facts {
            dt { "Status" } dd { (status(build.status)) @if !build.status.is_done() { " (this page reloads until it ends)" } }
            dt { "Toolchain" } dd { (build.toolchain.as_str()) }
            dt { "Sources" } dd { (bytes(build.archive_bytes.max(0) as u64)) ", SHA-256 " code { (build.archive_sha256.get(..16).unwrap_or("")) "…" } }
            dt { "Queued" } dd { (time(build.created_at)) }
            @if let Some(worker) = &build.worker { dt { "Worker" } dd { (worker) } }
            @if let Some(error) = &build.error { dt { "Error" } dd.error { (error) } }
            @if let Some(module) = &build.module_id { dt { "Module" } dd { a href={ "/modules/" (module) } { (build.name) } " version " (build.version) } }
        }
        h2 { "Log" }
        @if log.is_empty() { p.empty { "Nothing yet." } } @else { pre.log { (log) } }
        p { a href="/builds" { "All builds" } }
    };
    let page = page(Some(&session), Nav::Builds, &title, markup);
    if build.status.is_done() { page.into_response() } else { ([(HeaderName::from_static("refresh"), "2")], page).into_response() }
}
