//! The upload page: a `.wasm` file (picked or dropped), name, version, description,
//! time limit and, for admins, the class. The server's validation errors are shown next
//! to the field they concern, with the other values kept.

use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use edgefn_store::Project;
use maud::{Markup, html};
use serde::Deserialize;

use super::format::bytes;
use super::layout::{Nav, page};
use super::session::{Session, query};
use super::stash::Kept;
use crate::body::read_upload;
use crate::config::DEFAULT_MODULE_TIMEOUT_MS;
use crate::error::ApiError;
use crate::modules::{OWNER_TYPES, Upload, add_version};
use crate::state::AppState;

/// What the form holds, and where an error goes.
#[derive(Default)]
struct Form {
    name: String,
    version: String,
    description: String,
    timeout_ms: String,
    owner_type: String,
    /// A project id; empty for the caller's personal project.
    project: String,
    /// The file of a refused upload, kept on the server: (stash id, file name, size).
    kept: Option<(String, String, usize)>,
    error: Option<(Field, String)>,
}

/// The field an error is shown beside.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    File,
    Name,
    Version,
    Timeout,
    Form,
}

/// Query of the upload page.
#[derive(Deserialize)]
pub struct UploadQuery {
    name: Option<String>,
}

/// `GET /upload?name=`: the name is given when adding a version to a module, whose class
/// the form then keeps (a module's class cannot change).
pub async fn form(State(state): State<AppState>, session: Session, Query(q): Query<UploadQuery>) -> Markup {
    let mut form = Form { name: q.name.unwrap_or_default(), version: "1.0.0".into(), ..Form::default() };
    if !form.name.is_empty()
        && let Ok(module) = crate::modules::find(&state, &session.caller, &form.name, crate::access::Op::Read).await
    {
        form.owner_type = module.owner_type;
    }
    let projects = writable_projects(&state, &session).await;
    page(Some(&session), Nav::Upload, "Upload a module", form_body(&session, &form, &projects))
}

/// Projects the caller may upload to (owner or developer; admins: all), personal first.
async fn writable_projects(state: &AppState, session: &Session) -> Vec<Project> {
    let caller = &session.caller;
    let mut projects = crate::projects::visible_projects(state, caller).await.unwrap_or_default();
    projects.retain(|p| caller.user.is_admin() || caller.roles.get(&p.id).is_some_and(|r| r != "viewer"));
    projects.sort_by_key(|p| p.personal_of.as_deref() != Some(caller.user.id.as_str()));
    projects
}

/// `POST /upload` (multipart): registers the module and shows it, or the form again.
pub async fn submit(State(state): State<AppState>, session: Session, req: Request) -> Response {
    let mut form = Form::default();
    match upload(&state, &session, req, &mut form).await {
        Ok(location) => Redirect::to(&location).into_response(),
        Err((field, err)) => {
            let status = err.status();
            form.error = Some((field, err.message().to_string()));
            if status.is_client_error() {
                let projects = writable_projects(&state, &session).await;
                (status, page(Some(&session), Nav::Upload, "Upload a module", form_body(&session, &form, &projects))).into_response()
            } else {
                session.failure(Nav::Upload, err)
            }
        }
    }
}

async fn upload(state: &AppState, session: &Session, req: Request, form: &mut Form) -> Result<String, (Field, ApiError)> {
    let upload = read_upload(req, state.settings.max_module_bytes).await.map_err(|e| (Field::File, e))?;
    let field = |key: &str| upload.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    *form = Form {
        name: field("name"),
        version: field("version"),
        description: field("description"),
        timeout_ms: field("timeoutMs"),
        owner_type: field("ownerType"),
        project: field("project"),
        kept: None,
        error: None,
    };
    // No file chosen this time: the one kept from the refused try, if any.
    let (file_name, sent) = match (upload.bytes.is_empty(), field("kept")) {
        (true, id) if !id.is_empty() => match state.uploads.take(&id, &session.caller.user.id) {
            Some(kept) => (kept.file_name, kept.bytes),
            None => return Err((Field::File, ApiError::bad_request("the file kept from before has expired: choose it again"))),
        },
        _ => (upload.file_name.clone().unwrap_or_default(), upload.bytes),
    };
    if sent.is_empty() {
        return Err((Field::File, ApiError::bad_request("choose a .wasm or .wat file to upload")));
    }
    let result = add(state, session, form, &file_name, &sent).await;
    // Refused for something other than the file: keep it for the corrected form.
    if let Err((field, _)) = &result
        && !matches!(field, Field::File)
    {
        let size = sent.len();
        let id = state.uploads.keep(&session.caller.user.id, Kept { file_name: file_name.clone(), bytes: sent });
        form.kept = Some((id, file_name, size));
    }
    result
}

/// Assembles text if need be and adds the version the form describes.
async fn add(state: &AppState, session: &Session, form: &Form, file_name: &str, sent: &[u8]) -> Result<String, (Field, ApiError)> {
    let bytes = if file_name.ends_with(".wasm") {
        sent.to_vec()
    } else if file_name.ends_with(".wat") {
        // WebAssembly text is assembled here, as the CLI does.
        wat::parse_bytes(sent)
            .map(|b| b.into_owned())
            .map_err(|e| (Field::File, ApiError::bad_request(format!("{file_name} does not assemble: {e}"))))?
    } else {
        return Err((Field::File, ApiError::bad_request(format!("only .wasm and .wat files can be uploaded; `{file_name}` is neither"))));
    };
    if form.name.is_empty() {
        return Err((Field::Name, ApiError::bad_request("give the module a name")));
    }
    let what = Upload {
        name: form.name.clone(),
        version: if form.version.is_empty() { "1.0.0".into() } else { form.version.clone() },
        description: Some(form.description.clone()).filter(|d| !d.is_empty()),
        owner_type: Some(form.owner_type.clone()).filter(|t| !t.is_empty()),
        project: Some(form.project.clone()).filter(|p| !p.is_empty()),
        timeout_ms: Some(form.timeout_ms.clone()).filter(|t| !t.is_empty()),
    };
    match add_version(state, &session.caller, what, bytes).await {
        Ok((module, version)) => Ok(format!("/modules/{}?{}", module.id, query(&[("uploaded", version.version.as_str())]))),
        Err(e) => Err((field_of(&e), e)),
    }
}

/// Which field a server error is about.
fn field_of(err: &ApiError) -> Field {
    let message = err.message();
    match err.code() {
        "conflict" => Field::Version,
        _ if message.starts_with("name ") => Field::Name,
        _ if message.starts_with("version ") => Field::Version,
        _ if message.starts_with("timeoutMs") => Field::Timeout,
        "bad_request" | "disallowed_import" | "invalid_wasm" | "too_large" => Field::File,
        _ => Field::Form,
    }
}

fn form_body(session: &Session, form: &Form, projects: &[Project]) -> Markup {
    let error = |field: Field| form.error.as_ref().filter(|(f, _)| *f == field).map(|(_, m)| m.as_str());
    let described = |field: Field, id: &str, hint: Option<&str>| {
        let mut ids: Vec<String> = hint.map(|h| vec![h.to_string()]).unwrap_or_default();
        if error(field).is_some() {
            ids.push(format!("{id}-error"));
        }
        ids.join(" ")
    };
    let problem = |field: Field, id: &str| {
        html! { @if let Some(message) = error(field) { p.error id={ (id) "-error" } role="alert" { (message) } } }
    };
    html! {
        @if let Some(message) = error(Field::Form) { p.error role="alert" { (message) } }
        form.card method="post" action="/upload" enctype="multipart/form-data" {
            div.field.dropzone data-dropzone {
                label for="file" { "WebAssembly module (.wasm, or text: .wat)" }
                input #file type="file" name="file" accept=".wasm,.wat,application/wasm" required[form.kept.is_none()]
                    aria-invalid=[error(Field::File).map(|_| "true")] aria-describedby=(described(Field::File, "file", Some("file-hint")));
                p #file-hint .hint {
                    "Choose a file or drop it here. No module at hand? Download "
                    a href="/ui/examples/add.wasm" download { "add.wasm" } ", which adds two numbers."
                }
                @if let Some((id, name, size)) = &form.kept {
                    input type="hidden" name="kept" value=(id);
                    p #kept .notice { (name) " (" (bytes(*size as u64)) ") is kept: fix the form and upload again, or choose another file." }
                }
                p.chosen data-file aria-live="polite" {}
                (problem(Field::File, "file"))
            }
            div.field {
                label for="name" { "Name" }
                input #name type="text" name="name" value=(form.name) required maxlength="64" pattern="[A-Za-z0-9][A-Za-z0-9._+\\-]*"
                    aria-invalid=[error(Field::Name).map(|_| "true")] aria-describedby=(described(Field::Name, "name", Some("name-hint")));
                p #name-hint .hint { "Letters, digits, '-', '_', '.', '+'; taken from the file name. An existing name adds a version to that module." }
                (problem(Field::Name, "name"))
            }
            div.field {
                label for="version" { "Version" }
                input #version type="text" name="version" value=(if form.version.is_empty() { "1.0.0" } else { form.version.as_str() }) required maxlength="64"
                    aria-invalid=[error(Field::Version).map(|_| "true")] aria-describedby=(described(Field::Version, "version", None));
                (problem(Field::Version, "version"))
            }
            div.field {
                label for="description" { "Description (optional)" }
                textarea #description name="description" rows="2" { (form.description) }
            }
            div.field {
                label for="timeout" { "Time limit per call, in milliseconds (optional)" }
                input #timeout type="number" name="timeoutMs" min="1" inputmode="numeric" value=(form.timeout_ms) placeholder=(DEFAULT_MODULE_TIMEOUT_MS)
                    aria-invalid=[error(Field::Timeout).map(|_| "true")] aria-describedby=(described(Field::Timeout, "timeout", Some("timeout-hint")));
                p #timeout-hint .hint { "Default " (DEFAULT_MODULE_TIMEOUT_MS) " ms, capped by the module's class." }
                (problem(Field::Timeout, "timeout"))
            }
            @if projects.len() > 1 {
                div.field {
                    label for="project" { "Project" }
                    select #project name="project" aria-describedby="project-hint" {
                        @for p in projects { option value=(p.id) selected[form.project == p.id] { (p.name) } }
                    }
                    p #project-hint .hint { "A new module belongs to this project; its members share it by their roles." }
                }
            }
            @if session.caller.user.is_admin() {
                div.field {
                    label for="class" { "Class" }
                    select #class name="ownerType" aria-describedby="class-hint" {
                        @for class in OWNER_TYPES {
                            option value=(class) selected[form.owner_type == class || (form.owner_type.is_empty() && class == "admin")] { (class) }
                        }
                    }
                    p #class-hint .hint { "system: runnable by everyone, immutable; admin: admins only; user: its owner and those it is shared with." }
                }
            }
            button type="submit" { "Upload" }
        }
    }
}
