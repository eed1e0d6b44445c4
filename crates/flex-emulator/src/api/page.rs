//! Twilio's list pages: `PageSize` (default and maximum per API,
//! `docs/twilio-reference.md` §1), `Page`, `PageToken`, and the `meta`
//! envelope whose `next_page_url` works when followed verbatim.
//!
//! The page token is `PT` + the offset of the page's first item. When both
//! are given, `PageToken` wins over `Page` (as at Twilio, where `Page` is
//! client state only).

use serde_json::{Value, json};

use super::Call;
use super::error::ApiError;

/// Default and largest page size of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    pub default: usize,
    pub max: usize,
}

/// Flex, TaskRouter and Studio lists.
pub const WIDE: PageLimits = PageLimits {
    default: 50,
    max: 1000,
};
/// Chat and Conversations lists.
pub const CHAT: PageLimits = PageLimits {
    default: 50,
    max: 100,
};
/// Channel webhooks and conversation-scoped webhooks.
pub const WEBHOOKS: PageLimits = PageLimits { default: 5, max: 5 };

/// Which slice of a list a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    size: usize,
    number: usize,
    offset: usize,
}

impl Window {
    fn parse(call: &Call, limits: PageLimits) -> Result<Self, ApiError> {
        let params = &call.params;
        let size = match params.raw("PageSize") {
            None | Some("") => limits.default,
            Some(value) => match value.parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(ApiError::invalid_param(
                        "PageSize",
                        "must be a positive integer",
                    ));
                }
                Ok(size) => size.min(limits.max),
            },
        };
        let number = match params.raw("Page") {
            None | Some("") => 0,
            Some(value) => value
                .parse::<usize>()
                .map_err(|_| ApiError::invalid_param("Page", "must be a non-negative integer"))?,
        };
        let offset = match params.raw("PageToken") {
            None | Some("") => number.saturating_mul(size),
            Some(token) => token
                .strip_prefix("PT")
                .and_then(|offset| offset.parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::invalid_param("PageToken", "is not a token this API issued")
                })?,
        };
        Ok(Self {
            size,
            number,
            offset,
        })
    }
}

/// Answers one page of `items` (the whole filtered list) under `key`.
pub(crate) fn page(
    call: &Call,
    limits: PageLimits,
    key: &str,
    items: Vec<Value>,
) -> Result<Value, ApiError> {
    let window = Window::parse(call, limits)?;
    let total = items.len();
    let page_items: Vec<Value> = items
        .into_iter()
        .skip(window.offset)
        .take(window.size)
        .collect();
    let url_for = |number: usize, offset: Option<usize>| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(call.params.declared_pairs());
        query.append_pair("PageSize", &window.size.to_string());
        query.append_pair("Page", &number.to_string());
        if let Some(offset) = offset {
            query.append_pair("PageToken", &format!("PT{offset}"));
        }
        format!("{}{}?{}", call.base_url, call.path, query.finish())
    };
    let has_next = window.offset.saturating_add(window.size) < total;
    let next = has_next.then(|| {
        url_for(
            window.number.saturating_add(1),
            Some(window.offset + window.size),
        )
    });
    let previous = (window.number > 0 && window.offset > 0).then(|| {
        url_for(
            window.number - 1,
            Some(window.offset.saturating_sub(window.size)),
        )
    });
    let current_token = call
        .params
        .raw("PageToken")
        .filter(|t| !t.is_empty())
        .map(|_| window.offset);
    let mut body = serde_json::Map::new();
    body.insert(
        "meta".into(),
        json!({
            "page": window.number,
            "page_size": window.size,
            "first_page_url": url_for(0, None),
            "previous_page_url": previous,
            "url": url_for(window.number, current_token),
            "next_page_url": next,
            "key": key,
        }),
    );
    body.insert(key.into(), Value::Array(page_items));
    Ok(Value::Object(body))
}
