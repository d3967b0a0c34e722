//! Request bodies: JSON with errors in our format, and raw or multipart uploads with a
//! size limit answered by 413 before the whole body is read.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON request body (invoke arguments included).
const MAX_JSON_BYTES: usize = 2 * 1024 * 1024;

/// A query string whose rejections are `ApiError`s (400 in our error format).
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(QueryParams).map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
    }
}

/// A JSON body whose rejections are `ApiError`s.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = read_limited(req.into_body(), MAX_JSON_BYTES, MAX_JSON_BYTES).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// Reads at most `cap` bytes; a longer body is a 413 that names `limit`.
async fn read_limited(body: Body, cap: usize, limit: usize) -> Result<Vec<u8>, ApiError> {
    match Limited::new(body, cap).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(e) if edgefn_serve::BodyTimeout::caused(&*e) => Err(body_timeout(&*e)),
        Err(e) => Err(ApiError::bad_request(format!("could not read the request body: {e}"))),
    }
}

/// A body that did not arrive in time: 408.
fn body_timeout(e: &dyn std::error::Error) -> ApiError {
    ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, "body_timeout", e.to_string())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("request body is over the limit of {limit} bytes"))
}

/// An uploaded module: the bytes plus any form fields sent with them.
pub struct Upload {
    /// The wasm bytes.
    pub bytes: Vec<u8>,
    /// Form fields (multipart only): `name`, `version`, `description`…
    pub fields: Vec<(String, String)>,
    /// The file name the client gave (multipart only).
    pub file_name: Option<String>,
}

/// Reads a raw (`application/wasm`) or `multipart/form-data` upload (file field `file`).
pub async fn read_upload(req: Request, limit: usize) -> Result<Upload, ApiError> {
    let multipart = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        // One byte over the limit is enough to know it is too large.
        let bytes = read_limited(req.into_body(), limit + 1, limit).await?;
        return if bytes.len() > limit { Err(too_large(limit)) } else { Ok(Upload { bytes, fields: vec![], file_name: None }) };
    }
    let mut form = Multipart::from_request(req, &()).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut upload = Upload { bytes: Vec::new(), fields: Vec::new(), file_name: None };
    let mut found = false;
    while let Some(mut field) = form.next_field().await.map_err(|e| ApiError::bad_request(e.body_text()))? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            found = true;
            upload.file_name = field.file_name().map(str::to_string);
            while let Some(chunk) = field.chunk().await.map_err(|e| ApiError::bad_request(e.body_text()))? {
                upload.bytes.extend_from_slice(&chunk);
                if upload.bytes.len() > limit {
                    return Err(too_large(limit));
                }
            }
        } else {
            let text = field.text().await.map_err(|e| ApiError::bad_request(e.body_text()))?;
            upload.fields.push((name, text));
        }
    }
    if !found {
        return Err(ApiError::bad_request("multipart upload has no `file` field"));
    }
    Ok(upload)
}
