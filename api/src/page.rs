//! One page shape for every list the API answers (issue 22 item 7, issue 18 item 6):
//!
//! ```json
//! {"items": [ … ], "next_cursor": "…"}      // more to come: pass it back as `cursor`
//! {"items": [ … ], "next_cursor": null}     // the last page
//! ```
//!
//! `next_cursor` is always present; it is `null` exactly when no item follows, so it never
//! points at an empty page. Requests take `limit` (1–[`MAX_LIMIT`], default
//! [`DEFAULT_LIMIT`]) and `cursor` (an opaque string: the `next_cursor` of the previous
//! page). A list may carry context beside the two (availability's date and `total`).
//!
//! Every list reads its paging through one [`PageRequest`] ([`PageRequest::new`], or
//! [`PageRequest::reporting`] for a handler that lists every bad parameter at once),
//! fetches [`PageRequest::fetch`] rows (`limit + 1`) and hands them to
//! [`PageRequest::page`], or pages a bounded, ordered list in memory with
//! [`PageRequest::page_in_memory`]. Lists without filters of their own take [`PageQuery`].
//! The named page types the contract shows (`StaffPage`, `PaymentPage`, …) are declared
//! with [`page_type!`].

use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiCode, ApiError, FieldErrors};

/// Items answered when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit`.
pub const MAX_LIMIT: i64 = 500;

/// `limit` checked: 1–[`MAX_LIMIT`], default [`DEFAULT_LIMIT`]; otherwise 422 naming it.
pub fn limit(given: Option<i64>) -> Result<i64, ApiError> {
    let l = given.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&l) { Ok(l) } else { Err(ApiError::field("limit", ApiCode::Range)) }
}

/// The query of a list with nothing but paging.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(example = "operator.maragheh")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        PageRequest::new(self.limit, self.cursor.clone())
    }
}

/// The paging of one list request: `limit` checked, `cursor` as the client passed it.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// `limit` checked ([`limit`]); otherwise 422 naming it.
    pub fn new(limit: Option<i64>, cursor: Option<String>) -> Result<Self, ApiError> {
        Ok(PageRequest { limit: self::limit(limit)?, cursor })
    }

    /// Like [`new`](Self::new), for a handler that reports every bad parameter at once: a
    /// bad `limit` is recorded in `errors` and the default is used meanwhile.
    pub fn reporting(limit: Option<i64>, cursor: Option<String>, errors: &mut FieldErrors) -> Self {
        let limit = self::limit(limit).unwrap_or_else(|_| {
            errors.push("limit", ApiCode::Range);
            DEFAULT_LIMIT
        });
        PageRequest { limit, cursor }
    }

    /// How many rows to ask the store for ([`fetch`]).
    pub fn fetch(&self) -> i64 {
        fetch(self.limit)
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The page of rows fetched with [`fetch`](Self::fetch), in list order ([`Page::of`]).
    pub fn page<T>(&self, rows: Vec<T>, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        Page::of(rows, self.limit, cursor_of)
    }

    /// The page of a whole, bounded list after the cursor ([`Page::after`]).
    pub fn page_in_memory<T>(&self, rows: Vec<T>, order: Order, cursor_of: impl Fn(&T) -> String) -> Page<T> {
        Page::after(rows, order, self.cursor(), self.limit, cursor_of)
    }
}

/// Which way a list paged in memory runs, by its items' cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The last item's cursor when another item follows it.
    pub next_cursor: Option<String>,
}

/// How many rows to ask the store for: one more than the page, to learn whether another
/// page follows without answering a cursor to an empty one.
pub fn fetch(limit: i64) -> i64 {
    limit + 1
}

impl<T> Page<T> {
    /// A page from rows fetched with [`fetch`]`(limit)`, in list order.
    pub fn of(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more { rows.last().map(&cursor_of) } else { None };
        Page { items: rows, next_cursor }
    }

    /// A page of a whole, bounded list: the items after `cursor` in `order` of their
    /// cursors, at most `limit` of them. An item removed between two pages moves nothing.
    pub fn after(
        mut rows: Vec<T>,
        order: Order,
        cursor: Option<&str>,
        limit: i64,
        cursor_of: impl Fn(&T) -> String,
    ) -> Self {
        rows.sort_by_cached_key(|r| cursor_of(r));
        if order == Order::Descending {
            rows.reverse();
        }
        let rest: Vec<T> = match cursor {
            Some(c) => rows
                .into_iter()
                .filter(|r| match order {
                    Order::Ascending => cursor_of(r).as_str() > c,
                    Order::Descending => cursor_of(r).as_str() < c,
                })
                .collect(),
            None => rows,
        };
        let take = usize::try_from(limit).unwrap_or(0).saturating_add(1);
        Page::of(rest.into_iter().take(take).collect(), limit, cursor_of)
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Declares a named page type of the contract: `{items: [Item], next_cursor: string | null}`,
/// built from a [`Page`] of the items.
#[macro_export]
macro_rules! page_type {
    ($(#[$meta:meta])* $name:ident, $item:ty, $cursor_example:literal) => {
        $(#[$meta])*
        #[derive(serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the next page; `null` on the last page (never a
            /// cursor to an empty page).
            #[schema(example = $cursor_example, required = true)]
            pub next_cursor: Option<String>,
        }

        impl From<$crate::page::Page<$item>> for $name {
            fn from(p: $crate::page::Page<$item>) -> Self {
                $name { items: p.items, next_cursor: p.next_cursor }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &u32) -> String {
        format!("{n:04}")
    }

    #[test]
    fn a_full_page_has_a_cursor_only_when_more_follow() {
        let p = Page::of((1..=3).collect(), 3, key);
        assert_eq!((p.items.len(), p.next_cursor), (3, None), "exactly limit rows: the last page");
        let p = Page::of((1..=4).collect(), 3, key);
        assert_eq!((p.items, p.next_cursor), (vec![1, 2, 3], Some("0003".to_owned())));
        let p = Page::<u32>::of(vec![], 3, key);
        assert_eq!((p.items.len(), p.next_cursor), (0, None));
    }

    #[test]
    fn paging_in_memory_walks_the_list_once() {
        let all: Vec<u32> = vec![3, 1, 7, 2, 5, 4, 6];
        for order in [Order::Ascending, Order::Descending] {
            let mut seen = vec![];
            let mut cursor: Option<String> = None;
            loop {
                let p = Page::after(all.clone(), order, cursor.as_deref(), 3, key);
                assert!(!p.items.is_empty(), "never a cursor to an empty page");
                seen.extend(p.items);
                match p.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let mut want: Vec<u32> = (1..=7).collect();
            if order == Order::Descending {
                want.reverse();
            }
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(MAX_LIMIT)).unwrap(), MAX_LIMIT);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(MAX_LIMIT + 1)).is_err());
    }
}
