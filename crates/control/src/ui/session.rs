//! Signing in and out, and [`Session`]: the signed-in caller of a page, read from the
//! session cookie. A page asked for without a valid session sends the browser to the
//! sign-in page, which brings it back afterwards.

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{Nav, page};
use crate::access::Caller;
use crate::auth::authenticate;
use crate::error::ApiError;
use crate::state::AppState;

/// The cookie holding the signed-in token.
const COOKIE: &str = "edgefn_session";

/// The signed-in caller of a page.
pub(crate) struct Session {
    /// The caller, with its project roles, as the API sees it.
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let here = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let Some(token) = CookieJar::from_headers(&parts.headers).get(COOKIE).map(|c| c.value().to_string()) else {
            return Err(Redirect::to(&format!("/sign-in?{}", query(&[("next", here.as_str())]))).into_response());
        };
        let user = match authenticate(state, &token).await {
            Ok(user) => user,
            // The token was revoked or expired, or the user disabled, since signing in.
            Err(e) => {
                let message = format!("Your session has ended: {}. Sign in again.", e.message());
                return Err((StatusCode::UNAUTHORIZED, end_session(CookieJar::new()), sign_in_page(&here, Some(&message))).into_response());
            }
        };
        let roles = state.db.memberships(&user.id).await.map_err(|e| ApiError::from(e).into_response())?;
        Ok(Session { caller: Caller { user, roles } })
    }
}

/// `key=value&…`, encoded for a URL.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Where to go after signing in: a path on this site, never another site.
fn local(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\')).unwrap_or("/")
}

/// Query of the sign-in page.
#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// `GET /sign-in`.
pub async fn form(Query(q): Query<SignInQuery>) -> Markup {
    sign_in_page(local(q.next.as_deref()), None)
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignIn {
    token: String,
    next: Option<String>,
}

/// `POST /sign-in`: checks the token as the API would, then keeps it in the cookie.
pub async fn sign_in(State(state): State<AppState>, jar: CookieJar, Form(form): Form<SignIn>) -> Response {
    let next = local(form.next.as_deref());
    let token = form.token.trim();
    if token.is_empty() {
        return (StatusCode::BAD_REQUEST, sign_in_page(next, Some("Enter your API token."))).into_response();
    }
    match authenticate(&state, token).await {
        Ok(_) => {
            let cookie = Cookie::build((COOKIE, token.to_string())).path("/").http_only(true).same_site(SameSite::Strict);
            (jar.add(cookie), Redirect::to(next)).into_response()
        }
        Err(e) => {
            (StatusCode::UNAUTHORIZED, sign_in_page(next, Some(&format!("That token was not accepted: {}.", e.message())))).into_response()
        }
    }
}

/// `POST /sign-out`.
pub async fn sign_out(jar: CookieJar) -> Response {
    (end_session(jar), Redirect::to("/sign-in")).into_response()
}

fn end_session(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(COOKIE).path("/"))
}

fn sign_in_page(next: &str, error: Option<&str>) -> Markup {
    let body = html! {
        form.card method="post" action="/sign-in" {
            input type="hidden" name="next" value=(next);
            div.field {
                label for="token" { "API token" }
                input #token type="password" name="token" required autocomplete="current-password" autofocus
                    aria-invalid=[error.map(|_| "true")] aria-describedby=(if error.is_some() { "token-error token-hint" } else { "token-hint" });
                p #token-hint .hint {
                    "The token " code { "edgefn up" } " printed when it first started (also in "
                    code { "<data dir>/admin-token" } "), one from " code { "edgefn token create" } ", or your identity provider's JWT."
                }
                @if let Some(error) = error {
                    p #token-error .error role="alert" { (error) }
                }
            }
            button type="submit" { "Sign in" }
        }
    };
    page(None, Nav::None, "Sign in", body)
}
