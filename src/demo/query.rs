//! A request's query string, as the simulator's handlers read it.

use axum::response::{IntoResponse, Response};

use super::server::bad_request;

/// Decodes `a=1&b=x%20y` into pairs (`+` is a space; invalid escapes are kept verbatim).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// A query parameter that is wrong, answered with 400 and this message.
pub(super) struct BadParameter(pub String);

impl IntoResponse for BadParameter {
    fn into_response(self) -> Response {
        bad_request(&self.0)
    }
}

pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn from_request(req_query: Option<&str>) -> Query {
        Query(parse_query(req_query.unwrap_or("")))
    }

    /// The parameter's last value.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter whose name starts with `prefix`, the prefix cut off (`meta-KEY=value`).
    pub(super) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }

    /// A time parameter in ms (a fraction is cut off; empty is absent); a bad one is answered
    /// with 400.
    pub(super) fn ms(&self, name: &str) -> Result<Option<i64>, BadParameter> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .or_else(|| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f.floor() as i64)
                })
                .map(Some)
                .ok_or_else(|| {
                    BadParameter(format!(
                        "Invalid query parameter `{name}`: {v:?} is not a number"
                    ))
                }),
        }
    }
}
