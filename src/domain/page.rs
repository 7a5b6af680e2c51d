//! Relay-style keyset pagination, shared by every list.
//!
//! A cursor is the position of one row in its order: the sort value and the id that
//! breaks ties. Pages are fetched with `WHERE (key, id) > cursor ORDER BY key, id
//! LIMIT n + 1` on an index, so a page costs the same at row 20 and row 100,000, and
//! rows inserted meanwhile never shift a page.
//!
//! `totalCount` rides along in the page's own statement, as a scalar subquery the
//! database runs once, and a list may join what its rows name (an issue's people):
//! a page is one SQL statement.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait as _, Select, Statement,
    Value,
    sea_query::{Condition, Expr, SimpleExpr, SubQueryStatement},
};

use super::with_literal_limit;
use crate::{Error, Result, sync::lock};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// The paging arguments of a connection field, as the client sent them.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// Where a row stands in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The sort value, for orders by a timestamp; `None` for orders by id alone.
    pub key: Option<DateTime<Utc>>,
    pub id: i64,
}

/// A row's cursor: its position in an order, spelled as the opaque string a client
/// pages with only when the client asks for it (most pages are read for their nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    tag: &'static str,
    position: Position,
}

impl Cursor {
    /// The cursor as the client sees it.
    pub fn encode(&self) -> String {
        let key = self.position.key.map_or(String::new(), |at| at.timestamp_micros().to_string());
        URL_SAFE_NO_PAD.encode(format!("{}:{}:{}", self.tag, key, self.position.id))
    }
}

/// A page of rows, each with its cursor.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(Cursor, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    /// Rows matching the filter, on every page; counted only when asked for.
    pub total_count: Option<u64>,
}

/// One order a list can be read in: which column sorts it (ties broken by id),
/// which way, and a tag that keeps a cursor from being used with another order.
#[derive(Debug, Clone, Copy)]
pub struct Keyset<C> {
    pub tag: &'static str,
    pub key: Option<C>,
    pub id: C,
    pub descending: bool,
}

impl<C: ColumnTrait> Keyset<C> {
    /// The cursor of `position`.
    pub fn cursor(&self, position: Position) -> Cursor {
        Cursor { tag: self.tag, position }
    }

    /// The longest cursor of this order: the tag, two separators and two `i64`s of
    /// 20 characters at most (`-9223372036854775808`), in unpadded base64.
    fn max_cursor_len(&self) -> usize {
        ((self.tag.len() + 2 + 2 * 20) * 4).div_ceil(3)
    }

    fn decode(&self, cursor: &str, field: &'static str) -> Result<Position> {
        let invalid = || Error::bad_input(field, "Invalid cursor");
        if cursor.len() > self.max_cursor_len() {
            return Err(invalid());
        }
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let raw = String::from_utf8(raw).map_err(|_| invalid())?;
        let mut parts = raw.splitn(3, ':');
        let (tag, key, id) = (parts.next(), parts.next(), parts.next());
        if tag != Some(self.tag) {
            return Err(invalid());
        }
        let key = match (key, self.key.is_some()) {
            (Some(""), false) => None,
            (Some(micros), true) => {
                Some(micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?)
            }
            _ => return Err(invalid()),
        };
        let id = id.and_then(|id| id.parse().ok()).ok_or_else(invalid)?;
        Ok(Position { key, id })
    }

    /// Rows strictly after (`after == true`) or strictly before `position` in this order.
    fn beyond(&self, position: Position, after: bool) -> Condition {
        // Later in a descending order means smaller values.
        let greater = after != self.descending;
        let cmp = |column: C, value: sea_orm::Value| {
            if greater { column.gt(value) } else { column.lt(value) }
        };
        match (self.key, position.key) {
            (Some(column), Some(key)) => Condition::any()
                .add(cmp(column, key.into()))
                .add(Condition::all().add(column.eq(key)).add(cmp(self.id, position.id.into()))),
            _ => Condition::all().add(cmp(self.id, position.id.into())),
        }
    }

    /// The values [`Self::beyond`] binds, in its order.
    fn beyond_values(&self, position: Position, values: &mut Vec<Value>) {
        if let (Some(_), Some(key)) = (self.key, position.key) {
            values.push(key.into());
            values.push(key.into());
        }
        values.push(position.id.into());
    }

    fn ordered<E: EntityTrait<Column = C>>(&self, select: Select<E>, reverse: bool) -> Select<E> {
        let order = if self.descending != reverse { Order::Desc } else { Order::Asc };
        let select = match self.key {
            Some(column) => select.order_by(column, order.clone()),
            None => select,
        };
        select.order_by(self.id, order)
    }
}

/// The column the total is read from.
const TOTAL: &str = "page_total";

/// A row of a page with the list's total beside it.
struct Counted<R> {
    row: R,
    total: Option<i64>,
}

impl<R: FromQueryResult> FromQueryResult for Counted<R> {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        let total = res.try_get::<Option<i64>>(pre, TOTAL).ok().flatten();
        Ok(Self { row: R::from_query_result(res, pre)?, total })
    }
}

/// `(SELECT COUNT(*) FROM ... WHERE <the filter>)`.
fn count_of<E: EntityTrait>(select: &Select<E>) -> SimpleExpr {
    let count = select.clone().select_only().column_as(Expr::cust("COUNT(*)"), "n").into_query();
    SimpleExpr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(count)))
}

/// Where a page lies: its cursors, which way it is read, and how many rows it holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub after: Option<Position>,
    pub before: Option<Position>,
    pub backward: bool,
    pub limit: u64,
}

/// The statement of one page of `select` (and its total, `with_total`): from the SQL
/// kept for its shape when `shaped` is given and one is kept, else built.
pub(super) fn statement<E, C>(
    backend: DbBackend,
    select: &Select<E>,
    shaped: Option<Shaped<'_>>,
    keyset: Keyset<C>,
    bounds: Bounds,
    with_total: bool,
    read: impl FnOnce(Select<E>) -> Select<E>,
) -> Statement
where
    E: EntityTrait<Column = C>,
    C: ColumnTrait,
{
    let Bounds { after, before, backward, limit } = bounds;
    let build = || {
        let mut bounded = select.clone();
        if let Some(after) = after {
            bounded = bounded.filter(keyset.beyond(after, true));
        }
        if let Some(before) = before {
            bounded = bounded.filter(keyset.beyond(before, false));
        }
        // The total comes last, after what `read` adds: a row type may read its
        // columns by position.
        let mut page = read(keyset.ordered(bounded, backward));
        if with_total {
            page = page.column_as(count_of(select), TOTAL);
        }
        with_literal_limit(backend, page, limit + 1)
    };
    match (shaped, backend) {
        (Some(shaped), DbBackend::Sqlite | DbBackend::Postgres) => {
            let key = ShapeKey {
                postgres: backend == DbBackend::Postgres,
                filter: shaped.filter,
                order: keyset.tag,
                descending: keyset.descending,
                after: after.is_some(),
                before: before.is_some(),
                backward,
                limit,
                with_total,
            };
            // The count's select list comes before the page's WHERE.
            let mut values = Vec::with_capacity(2 * shaped.values.len() + 6);
            if with_total {
                values.extend(shaped.values.iter().cloned());
            }
            values.extend(shaped.values);
            for position in [after, before].into_iter().flatten() {
                keyset.beyond_values(position, &mut values);
            }
            shaped.shapes.statement(key, values, build)
        }
        _ => build(),
    }
}

/// The SQL of one list's pages, kept by shape, so that a page whose shape was seen
/// before binds its values to that SQL instead of building the statement (and its
/// count) as a tree and rendering it (with cloning and dropping the trees, 12 to 15 %
/// of a page's CPU in a PostgreSQL profile; the base select and its filter are still
/// built, for the statements a page may need besides). A shape is all that
/// decides the SQL: the list's filter shape (which criteria, lists of how many), the
/// order, which cursors, which way, the page size and whether the total is counted.
///
/// The values must be the ones the build would collect, in its order: the filter's
/// (for the count, when counted, then for the page), then the cursors'. A test of
/// each list's shapes compares the statement with the build, on both backends.
#[derive(Debug, Default)]
pub struct Shapes {
    sql: Mutex<HashMap<ShapeKey, Arc<str>>>,
}

/// Shapes kept at most, per list: past that a page is built as before, so that a
/// client sending ever new shapes costs no memory.
const MAX_SHAPES: usize = 512;

/// Everything that decides a page statement's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ShapeKey {
    postgres: bool,
    filter: u64,
    order: &'static str,
    descending: bool,
    after: bool,
    before: bool,
    backward: bool,
    limit: u64,
    with_total: bool,
}

impl Shapes {
    pub fn new() -> Self {
        Self::default()
    }

    /// The statement `build` makes, from the SQL kept for `key` with `values` bound
    /// when there is one; else built, and its SQL kept.
    fn statement(&self, key: ShapeKey, values: Vec<Value>, build: impl FnOnce() -> Statement) -> Statement {
        let kept = lock(&self.sql).get(&key).cloned();
        if let Some(sql) = kept {
            let backend = if key.postgres { DbBackend::Postgres } else { DbBackend::Sqlite };
            return Statement::from_sql_and_values(backend, &*sql, values);
        }
        let statement = build();
        let mut kept = lock(&self.sql);
        if kept.len() < MAX_SHAPES {
            kept.insert(key, statement.sql.as_str().into());
        }
        statement
    }
}

/// A list's filter, as [`Shapes`] keeps it: its shape (the same number for filters
/// whose SQL is the same, and only for those) and the values its condition binds.
#[derive(Debug)]
pub struct Shaped<'a> {
    pub shapes: &'a Shapes,
    pub filter: u64,
    pub values: Vec<Value>,
}

/// What a list reads from: its select, already filtered, and the filter's shape when
/// the list keeps its SQL by shape. A select alone converts into one that does not.
#[derive(Debug)]
pub struct Listing<'a, E: EntityTrait> {
    pub select: Select<E>,
    pub shaped: Option<Shaped<'a>>,
}

impl<E: EntityTrait> From<Select<E>> for Listing<'_, E> {
    fn from(select: Select<E>) -> Self {
        Self { select, shaped: None }
    }
}

/// Reads one page of a listing in the order of `keyset`.
///
/// `with_total` asks for `totalCount`; `read` adds what a row carries beyond the
/// entity (joins and their columns) for `R` to read, and `position_of` reads a
/// row's position.
pub async fn fetch<'a, E, C, R>(
    db: &DatabaseConnection,
    listing: impl Into<Listing<'a, E>>,
    keyset: Keyset<C>,
    args: PageArgs,
    with_total: bool,
    read: impl FnOnce(Select<E>) -> Select<E>,
    position_of: impl Fn(&R) -> Position,
) -> Result<Page<R>>
where
    E: EntityTrait<Column = C>,
    E::Model: Sync,
    C: ColumnTrait,
    R: FromQueryResult + Send + Sync,
{
    let Listing { select, shaped } = listing.into();
    let size = |value: Option<i32>, field: &'static str| -> Result<Option<u64>> {
        match value {
            None => Ok(None),
            Some(n) if (0..=MAX_PAGE_SIZE as i32).contains(&n) => Ok(Some(n as u64)),
            Some(_) => Err(Error::bad_input(field, format!("{field} must be between 0 and {MAX_PAGE_SIZE}"))),
        }
    };
    let first = size(args.first, "first")?;
    let last = size(args.last, "last")?;
    if first.is_some() && last.is_some() {
        return Err(Error::bad_input("last", "Pass either first or last, not both"));
    }
    let after = args.after.as_deref().map(|c| keyset.decode(c, "after")).transpose()?;
    let before = args.before.as_deref().map(|c| keyset.decode(c, "before")).transpose()?;

    // Forward unless `last` is given; the cursors bound the range either way.
    let backward = last.is_some();
    let limit = last.or(first).unwrap_or(DEFAULT_PAGE_SIZE);
    let backend = db.get_database_backend();
    let bounds = Bounds { after, before, backward, limit };
    let statement = statement(backend, &select, shaped, keyset, bounds, with_total, read);
    let mut rows = super::fetch::<Counted<R>>(db, statement).await?;
    let total_count = match (with_total, rows.first()) {
        (false, _) => None,
        (true, Some(row)) => Some(row.total.unwrap_or_default().max(0) as u64),
        // An empty page has no row to carry the total: nothing matches at all, or
        // the cursors point past the end.
        (true, None) if after.is_none() && before.is_none() => Some(0),
        (true, None) => Some(select.clone().count(db).await?),
    };
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    if backward {
        rows.reverse();
    }

    // Whether anything lies beyond the cursor on the side the page was not read from:
    // at or before `after` when reading forward, at or after `before` when backward.
    let outside = match (backward, after, before) {
        (false, Some(after), _) => Some(keyset.beyond(after, true).not()),
        (true, _, Some(before)) => Some(keyset.beyond(before, false).not()),
        _ => None,
    };
    let exists_outside = match outside {
        Some(condition) => {
            let statement = with_literal_limit(db.get_database_backend(), select.filter(condition), 1);
            !db.query_all_raw(statement).await?.is_empty()
        }
        None => false,
    };
    let (has_next_page, has_previous_page) =
        if backward { (exists_outside, has_more) } else { (has_more, exists_outside) };

    let items = rows.into_iter().map(|row| (keyset.cursor(position_of(&row.row)), row.row)).collect();
    Ok(Page { items, has_next_page, has_previous_page, total_count })
}
