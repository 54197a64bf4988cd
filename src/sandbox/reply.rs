//! The answer a simulated endpoint decides on, built inside the request's
//! transaction and turned into an HTTP response after the commit.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A status, a body and extra headers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: StatusCode,
    body: ReplyBody,
    headers: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
enum ReplyBody {
    Json(Value),
    Text {
        content_type: &'static str,
        text: String,
    },
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: u16, value: Value) -> Self {
        Self {
            status: status_code(status),
            body: ReplyBody::Json(value),
            headers: Vec::new(),
        }
    }

    /// A text answer with the given content type.
    pub(crate) fn text(status: u16, content_type: &'static str, text: impl Into<String>) -> Self {
        Self {
            status: status_code(status),
            body: ReplyBody::Text {
                content_type,
                text: text.into(),
            },
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body, if it is one.
    #[cfg(test)]
    pub(crate) fn json_body(&self) -> Option<&Value> {
        match &self.body {
            ReplyBody::Json(v) => Some(v),
            _ => None,
        }
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let (content_type, body) = match self.body {
            ReplyBody::Json(value) => (
                "application/json",
                Body::from(serde_json::to_vec(&value).unwrap_or_default()),
            ),
            ReplyBody::Text { content_type, text } => (content_type, Body::from(text)),
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// A handler's early exit: a reply to send (validation, not found...) or
/// a database error (rolled back, answered 500).
#[derive(Debug)]
pub(crate) enum Fail {
    /// Answer this and commit.
    Reply(Reply),
    /// Roll back.
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

impl From<Reply> for Fail {
    fn from(r: Reply) -> Self {
        Self::Reply(r)
    }
}

/// What a handler returns.
pub(crate) type Outcome = Result<Reply, Fail>;

/// Folds an outcome back into what a transaction returns.
pub(crate) fn settle(outcome: Outcome) -> rusqlite::Result<Reply> {
    match outcome {
        Ok(reply) | Err(Fail::Reply(reply)) => Ok(reply),
        Err(Fail::Db(e)) => Err(e),
    }
}
