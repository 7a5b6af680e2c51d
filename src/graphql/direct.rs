//! Direct answers: a query of the shape most clients send (an issue, or a page of
//! issues with their people) is answered by a plan made from its document once,
//! which calls the domain and writes the response's JSON as it goes. async-graphql's
//! executor resolves every field of every node as a boxed future and builds a tree
//! of values before it serialises it: most of a list page's CPU beyond the database's.
//!
//! A plan covers only what it answers exactly as the executor does, byte for byte:
//!
//! - an operation that is a query, with no directives anywhere and no two fields
//!   answering under one name, whose fragments (inline or spread) are on the type
//!   they are spread in, and at most [`MAX_FIELDS`] fields once they are spread;
//! - variables of type `ID`, `String`, `Int` or `Boolean`, nullable or not;
//! - one root field that reads, `Query.issue` or `Query.issues`, after any
//!   `__typename`: the executor puts root fields in the order they finish, so only
//!   then is its order certain;
//! - an issue's `id`, `number`, `kind`, `title`, `description`, `status` and its four
//!   times, and in a page its `createdBy` and `assignedTo` (read with the page); a
//!   user's `id`, `username`, `firstName`, `lastName` and `createdAt`; a page's
//!   `totalCount`, `nodes`, `edges { cursor node }` and `pageInfo`; `__typename`.
//!
//! Anything else goes to the executor as it always has, and so does a request the
//! plan cannot answer: a variable's value of another type, a caller who is not
//! signed in, any error. A query changes nothing, so a plan that gives up has only
//! cost the read it did. `TRIAGE_DIRECT_ANSWERS=false` turns plans off; a test sends
//! the same documents to a server with and without them and compares the bytes.

use std::{cell::Cell, collections::HashSet};

use async_graphql::{
    InputType, Name, Positioned, Variables,
    parser::types::{
        BaseType, DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
    },
    resolver_utils::EnumType,
};
use async_graphql_value::{ConstValue, Value};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use super::{
    query::issues::{IssueListing, issue_reference},
    types::{IssueKind, IssueStatus, page_args},
};
use crate::{
    auth::Caller,
    domain::{
        self,
        issues::{Issue, ListedIssue},
        page::{Cursor, Page},
        users::Profile,
    },
};

/// How deep fragments may spread into each other in a plan's document.
const MAX_SPREAD_DEPTH: usize = 8;

/// Most fields a plan holds once its fragments are spread: a small document can
/// spread one fragment into many places, and a plan is kept as long as its document.
/// A bigger one is left to the executor.
const MAX_FIELDS: usize = 1_000;

/// An operation's answer, made without the executor.
#[derive(Debug)]
pub struct Plan {
    /// The operation's name; a request that names another is not this plan's.
    name: Option<Name>,
    variables: Vec<Variable>,
    root: Object<Root>,
    /// How many fields the plan holds, fragments spread (at most [`MAX_FIELDS`]).
    fields: usize,
}

/// The fields of an object in the response: each with the name it answers under.
type Object<F> = Vec<(Name, F)>;

/// A field's arguments, as the document writes them.
type Arguments = Vec<(Name, Value)>;

#[derive(Debug)]
struct Variable {
    name: Name,
    scalar: Scalar,
    nullable: bool,
    default: Option<ConstValue>,
}

/// The types a plan's variables may have.
#[derive(Debug, Clone, Copy)]
enum Scalar {
    Id,
    String,
    Int,
    Boolean,
}

#[derive(Debug)]
enum Root {
    Typename,
    Issue(Arguments, Object<IssueField>),
    Issues(Arguments, Connection),
}

#[derive(Debug)]
struct Connection {
    fields: Object<ConnectionField>,
    /// Whether `totalCount` is asked for (it costs a count).
    counted: bool,
}

#[derive(Debug)]
enum ConnectionField {
    Typename,
    TotalCount,
    Nodes(Object<IssueField>),
    Edges(Object<EdgeField>),
    PageInfo(Object<PageInfoField>),
}

#[derive(Debug)]
enum EdgeField {
    Typename,
    Cursor,
    Node(Object<IssueField>),
}

#[derive(Debug)]
enum PageInfoField {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

#[derive(Debug)]
enum IssueField {
    Typename,
    Id,
    Number,
    Kind,
    Title,
    Description,
    Status,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
    DeletedAt,
    CreatedBy(Object<UserField>),
    AssignedTo(Object<UserField>),
}

impl IssueField {
    fn is_person(&self) -> bool {
        matches!(self, Self::CreatedBy(_) | Self::AssignedTo(_))
    }
}

#[derive(Debug)]
enum UserField {
    Typename,
    Id,
    Username,
    FirstName,
    LastName,
    CreatedAt,
}

impl Plan {
    /// The plan of `document`'s one operation; `None` when it has more than one, or
    /// asks for anything a plan does not cover. `document` has passed validation.
    pub fn compile(document: &ExecutableDocument) -> Option<Self> {
        let (name, operation) = match &document.operations {
            DocumentOperations::Single(operation) => (None, operation),
            DocumentOperations::Multiple(operations) if operations.len() == 1 => {
                operations.iter().next().map(|(name, operation)| (Some(name.clone()), operation))?
            }
            DocumentOperations::Multiple(_) => return None,
        };
        let operation = &operation.node;
        if operation.ty != OperationType::Query || !operation.directives.is_empty() {
            return None;
        }
        let variables = operation
            .variable_definitions
            .iter()
            .map(|definition| {
                let definition = &definition.node;
                let BaseType::Named(ty) = &definition.var_type.node.base else { return None };
                let scalar = match ty.as_str() {
                    "ID" => Scalar::Id,
                    "String" => Scalar::String,
                    "Int" => Scalar::Int,
                    "Boolean" => Scalar::Boolean,
                    _ => return None,
                };
                definition.directives.is_empty().then(|| Variable {
                    name: definition.name.node.clone(),
                    scalar,
                    nullable: definition.var_type.node.nullable,
                    default: definition.default_value().cloned(),
                })
            })
            .collect::<Option<_>>()?;
        let compiler = Compiler { document, fields: Cell::new(0) };
        let root = compiler.object("Query", &operation.selection_set, |name, field| match name {
            "__typename" => Some(Root::Typename),
            "issue" => Some(Root::Issue(
                compiler.arguments(field, &["id", "key"])?,
                // A single issue is read without its people: asking for them is left
                // to the executor, rather than read twice.
                compiler.object("Issue", &field.selection_set, |name, field| {
                    compiler.issue_field(name, field).filter(|field| !field.is_person())
                })?,
            )),
            "issues" => Some(Root::Issues(
                compiler.arguments(field, &["filter", "orderBy", "first", "after", "last", "before"])?,
                compiler.connection(field)?,
            )),
            _ => None,
        })?;
        // The executor puts a query's root fields in the order they finish: those that
        // need no database first (`__typename`), the others as their reads return.
        // A plan answers what that order makes certain: one field that reads, after
        // any `__typename`.
        let reads = root.iter().filter(|(_, field)| !matches!(field, Root::Typename)).count();
        if reads != 1 || !matches!(root.last(), Some((_, Root::Issue(..) | Root::Issues(..)))) {
            return None;
        }
        Some(Self { name, variables, root, fields: compiler.fields.get() })
    }

    /// How many fields the plan holds, to weigh it in the document cache.
    pub fn fields(&self) -> usize {
        self.fields
    }

    /// Whether a request naming `operation` (or none) runs this plan's operation.
    pub fn runs(&self, operation: Option<&str>) -> bool {
        operation.is_none_or(|operation| self.name.as_deref() == Some(operation))
    }

    /// The response to the operation with `variables`, for `caller`; `None` when the
    /// executor must answer it.
    pub async fn answer(
        &self,
        db: &DatabaseConnection,
        caller: Caller,
        variables: &Variables,
    ) -> Option<Vec<u8>> {
        if !self.variables.iter().all(|variable| variable.fits(variables.get(&variable.name))) {
            return None;
        }
        // The sign-in gate's rule: every root field but `__typename` needs a caller.
        let actor = caller.actor().ok();
        let mut out = Json(Vec::with_capacity(1024));
        out.raw("{\"data\":{");
        for (n, (key, field)) in self.root.iter().enumerate() {
            out.key(n, key);
            match field {
                Root::Typename => out.string("Query"),
                Root::Issue(arguments, fields) => {
                    let actor = actor?;
                    let read = Reader { plan: self, arguments, variables };
                    let issue = match issue_reference(read.get("id")?, read.get("key")?).ok()? {
                        Some(reference) => domain::issues::readable(db, actor, &reference).await.ok()?,
                        None => None,
                    };
                    match issue {
                        Some(issue) => out.issue(fields, &issue, None, None)?,
                        None => out.null(),
                    }
                }
                Root::Issues(arguments, connection) => {
                    let actor = actor?;
                    let read = Reader { plan: self, arguments, variables };
                    let page = page_args(
                        read.get("first")?,
                        read.get("after")?,
                        read.get("last")?,
                        read.get("before")?,
                    );
                    let listing = IssueListing::read(read.get("filter")?, read.get("orderBy")?, page).ok()?;
                    let IssueListing { filter, order, page } = listing;
                    let page = domain::issues::list(db, actor, &filter, order, page, connection.counted)
                        .await
                        .ok()?;
                    out.connection(&connection.fields, &page)?;
                }
            }
        }
        out.raw("}}");
        Some(out.0)
    }

    fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|variable| variable.name.as_str() == name)
    }
}

/// A field's arguments, read as its resolver would read them.
struct Reader<'a> {
    plan: &'a Plan,
    arguments: &'a Arguments,
    variables: &'a Variables,
}

impl Reader<'_> {
    /// The argument `name`, with its variables' values; `None` when it cannot be
    /// read (the executor says why).
    fn get<T: InputType>(&self, name: &str) -> Option<T> {
        let value = self
            .arguments
            .iter()
            .find(|(argument, _)| argument.as_str() == name)
            .map(|(_, value)| {
                value.clone().into_const_with(|variable| {
                    self.variables
                        .get(&variable)
                        .or_else(|| self.plan.variable(&variable).and_then(|v| v.default.as_ref()))
                        .cloned()
                        .ok_or(())
                })
            })
            .transpose()
            .ok()?;
        T::parse(value).ok()
    }
}

impl Variable {
    /// Whether `value` is one the executor would take for this variable as it is.
    fn fits(&self, value: Option<&ConstValue>) -> bool {
        match (value, self.scalar) {
            (None, _) => self.default.is_some(),
            (Some(ConstValue::Null), _) => self.nullable,
            (Some(ConstValue::String(_)), Scalar::Id | Scalar::String) => true,
            (Some(ConstValue::Number(number)), Scalar::Id) => number.is_i64(),
            (Some(ConstValue::Number(number)), Scalar::Int) => {
                number.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
            }
            (Some(ConstValue::Boolean(_)), Scalar::Boolean) => true,
            _ => false,
        }
    }
}

/// Makes a plan's parts from a validated document.
struct Compiler<'a> {
    document: &'a ExecutableDocument,
    /// The fields made so far.
    fields: Cell<usize>,
}

impl Compiler<'_> {
    /// The fields `set` selects on `ty`, each made by `field` from its name.
    fn object<F>(
        &self,
        ty: &str,
        set: &Positioned<SelectionSet>,
        field: impl Fn(&str, &Field) -> Option<F>,
    ) -> Option<Object<F>> {
        let mut fields = Vec::new();
        self.flatten(ty, set, &mut fields, 0)?;
        let mut keys = HashSet::with_capacity(fields.len());
        let mut object: Object<F> = Vec::with_capacity(fields.len());
        for selected in fields {
            let key = &selected.alias.as_ref().unwrap_or(&selected.name).node;
            // Two fields under one name are merged by the executor: left to it.
            if !keys.insert(key) {
                return None;
            }
            self.fields.set(self.fields.get() + 1);
            if self.fields.get() > MAX_FIELDS {
                return None;
            }
            object.push((key.clone(), field(selected.name.node.as_str(), selected)?));
        }
        Some(object)
    }

    /// The fields of `set` on `ty`, fragments spread in place.
    fn flatten<'d>(
        &'d self,
        ty: &str,
        set: &'d Positioned<SelectionSet>,
        fields: &mut Vec<&'d Field>,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_SPREAD_DEPTH {
            return None;
        }
        for selection in &set.node.items {
            match &selection.node {
                Selection::Field(field) if field.node.directives.is_empty() => fields.push(&field.node),
                Selection::FragmentSpread(spread) if spread.node.directives.is_empty() => {
                    let fragment = &self.document.fragments.get(&spread.node.fragment_name.node)?.node;
                    if fragment.type_condition.node.on.node != ty || !fragment.directives.is_empty() {
                        return None;
                    }
                    self.flatten(ty, &fragment.selection_set, fields, depth + 1)?;
                }
                Selection::InlineFragment(inline) if inline.node.directives.is_empty() => {
                    if inline
                        .node
                        .type_condition
                        .as_ref()
                        .is_some_and(|condition| condition.node.on.node != ty)
                    {
                        return None;
                    }
                    self.flatten(ty, &inline.node.selection_set, fields, depth + 1)?;
                }
                _ => return None,
            }
        }
        Some(())
    }

    /// A field's arguments, when each is one of `known`.
    fn arguments(&self, field: &Field, known: &[&str]) -> Option<Arguments> {
        field
            .arguments
            .iter()
            .map(|(name, value)| {
                known.contains(&name.node.as_str()).then(|| (name.node.clone(), value.node.clone()))
            })
            .collect()
    }

    /// A field without arguments or a selection of its own.
    fn leaf<F>(field: &Field, made: F) -> Option<F> {
        (field.arguments.is_empty() && field.selection_set.node.items.is_empty()).then_some(made)
    }

    fn connection(&self, field: &Field) -> Option<Connection> {
        let fields = self.object("IssueConnection", &field.selection_set, |name, field| match name {
            "__typename" => Some(ConnectionField::Typename),
            "totalCount" => Self::leaf(field, ConnectionField::TotalCount),
            "nodes" => Some(ConnectionField::Nodes(self.issue(field)?)),
            "edges" => Some(ConnectionField::Edges(self.object(
                "IssueEdge",
                &field.selection_set,
                |name, field| match name {
                    "__typename" => Some(EdgeField::Typename),
                    "cursor" => Self::leaf(field, EdgeField::Cursor),
                    "node" => Some(EdgeField::Node(self.issue(field)?)),
                    _ => None,
                },
            )?)),
            "pageInfo" => Some(ConnectionField::PageInfo(self.object(
                "PageInfo",
                &field.selection_set,
                |name, field| {
                    Self::leaf(
                        field,
                        match name {
                            "__typename" => PageInfoField::Typename,
                            "hasNextPage" => PageInfoField::HasNextPage,
                            "hasPreviousPage" => PageInfoField::HasPreviousPage,
                            "startCursor" => PageInfoField::StartCursor,
                            "endCursor" => PageInfoField::EndCursor,
                            _ => return None,
                        },
                    )
                },
            )?)),
            _ => None,
        })?;
        let counted = fields.iter().any(|(_, field)| matches!(field, ConnectionField::TotalCount));
        Some(Connection { fields, counted })
    }

    fn issue(&self, field: &Field) -> Option<Object<IssueField>> {
        if !field.arguments.is_empty() {
            return None;
        }
        self.object("Issue", &field.selection_set, |name, field| self.issue_field(name, field))
    }

    fn issue_field(&self, name: &str, field: &Field) -> Option<IssueField> {
        let person = |field: &Field| {
            if !field.arguments.is_empty() {
                return None;
            }
            self.object("User", &field.selection_set, |name, field| {
                Self::leaf(
                    field,
                    match name {
                        "__typename" => UserField::Typename,
                        "id" => UserField::Id,
                        "username" => UserField::Username,
                        "firstName" => UserField::FirstName,
                        "lastName" => UserField::LastName,
                        "createdAt" => UserField::CreatedAt,
                        _ => return None,
                    },
                )
            })
        };
        match name {
            "createdBy" => Some(IssueField::CreatedBy(person(field)?)),
            "assignedTo" => Some(IssueField::AssignedTo(person(field)?)),
            _ => Self::leaf(
                field,
                match name {
                    "__typename" => IssueField::Typename,
                    "id" => IssueField::Id,
                    "number" => IssueField::Number,
                    "kind" => IssueField::Kind,
                    "title" => IssueField::Title,
                    "description" => IssueField::Description,
                    "status" => IssueField::Status,
                    "createdAt" => IssueField::CreatedAt,
                    "updatedAt" => IssueField::UpdatedAt,
                    "closedAt" => IssueField::ClosedAt,
                    "deletedAt" => IssueField::DeletedAt,
                    _ => return None,
                },
            ),
        }
    }
}

/// A response's JSON, written as async-graphql's serialiser writes it.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, text: &str) {
        self.0.extend_from_slice(text.as_bytes());
    }

    fn null(&mut self) {
        self.raw("null");
    }

    fn string(&mut self, text: &str) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, text);
    }

    /// Text that needs no escaping (a name, a time), in quotes.
    fn quoted(&mut self, text: &str) {
        self.0.push(b'"');
        self.raw(text);
        self.0.push(b'"');
    }

    /// An integer, as serde_json writes it.
    fn integer(&mut self, value: i128) {
        let mut digits = [0_u8; 40];
        let mut at = digits.len();
        let mut rest = value.unsigned_abs();
        loop {
            at -= 1;
            // A digit: always below 10.
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if value < 0 {
            self.0.push(b'-');
        }
        self.0.extend_from_slice(&digits[at..]);
    }

    /// A row id, as an `ID`: the integer in quotes.
    fn id(&mut self, id: i64) {
        self.0.push(b'"');
        self.integer(id.into());
        self.0.push(b'"');
    }

    fn boolean(&mut self, value: bool) {
        self.raw(if value { "true" } else { "false" });
    }

    fn optional_string(&mut self, text: Option<&str>) {
        match text {
            Some(text) => self.string(text),
            None => self.null(),
        }
    }

    fn time(&mut self, time: DateTime<Utc>) {
        self.quoted(&time.to_rfc3339());
    }

    fn optional_time(&mut self, time: Option<DateTime<Utc>>) {
        match time {
            Some(time) => self.time(time),
            None => self.null(),
        }
    }

    /// An enum's value by the name the schema gives it.
    fn name<E: EnumType + PartialEq>(&mut self, value: E) -> Option<()> {
        let item = E::items().iter().find(|item| item.value == value)?;
        self.quoted(item.name);
        Some(())
    }

    /// The name of the `n`th field of an object, and the comma before it.
    fn key(&mut self, n: usize, key: &Name) {
        if n > 0 {
            self.raw(",");
        }
        self.quoted(key);
        self.0.push(b':');
    }

    /// An object of `fields`, each written by `write` after its name.
    fn object<F>(&mut self, fields: &[(Name, F)], write: impl Fn(&mut Self, &F) -> Option<()>) -> Option<()> {
        self.raw("{");
        for (n, (key, field)) in fields.iter().enumerate() {
            self.key(n, key);
            write(self, field)?;
        }
        self.raw("}");
        Some(())
    }

    /// A list of `items`, each written by `write`.
    fn list<T>(&mut self, items: &[T], write: impl Fn(&mut Self, &T) -> Option<()>) -> Option<()> {
        self.raw("[");
        for (n, item) in items.iter().enumerate() {
            if n > 0 {
                self.raw(",");
            }
            write(self, item)?;
        }
        self.raw("]");
        Some(())
    }

    fn connection(&mut self, fields: &Object<ConnectionField>, page: &Page<ListedIssue>) -> Option<()> {
        self.object(fields, |out, field| {
            match field {
                ConnectionField::Typename => out.string("IssueConnection"),
                ConnectionField::TotalCount => out.integer(page.total_count.unwrap_or_default().into()),
                ConnectionField::Nodes(fields) => {
                    out.list(&page.items, |out, (_, listed)| out.listed(fields, listed))?;
                }
                ConnectionField::Edges(fields) => {
                    out.list(&page.items, |out, (cursor, listed)| out.edge(fields, cursor, listed))?;
                }
                ConnectionField::PageInfo(fields) => out.page_info(fields, page)?,
            }
            Some(())
        })
    }

    fn edge(&mut self, fields: &Object<EdgeField>, cursor: &Cursor, listed: &ListedIssue) -> Option<()> {
        self.object(fields, |out, field| {
            match field {
                EdgeField::Typename => out.string("IssueEdge"),
                EdgeField::Cursor => out.string(&cursor.encode()),
                EdgeField::Node(fields) => out.listed(fields, listed)?,
            }
            Some(())
        })
    }

    fn page_info(&mut self, fields: &Object<PageInfoField>, page: &Page<ListedIssue>) -> Option<()> {
        let cursor = |item: Option<&(Cursor, ListedIssue)>| item.map(|(cursor, _)| cursor.encode());
        self.object(fields, |out, field| {
            match field {
                PageInfoField::Typename => out.string("PageInfo"),
                PageInfoField::HasNextPage => out.boolean(page.has_next_page),
                PageInfoField::HasPreviousPage => out.boolean(page.has_previous_page),
                PageInfoField::StartCursor => out.optional_string(cursor(page.items.first()).as_deref()),
                PageInfoField::EndCursor => out.optional_string(cursor(page.items.last()).as_deref()),
            }
            Some(())
        })
    }

    fn listed(&mut self, fields: &Object<IssueField>, listed: &ListedIssue) -> Option<()> {
        self.issue(fields, &listed.issue, listed.creator.as_ref(), listed.assignee.as_ref())
    }

    /// An issue, with its people when they were read with it; `None` when a field
    /// asks for one that was not.
    fn issue(
        &mut self,
        fields: &Object<IssueField>,
        issue: &Issue,
        creator: Option<&Profile>,
        assignee: Option<&Profile>,
    ) -> Option<()> {
        self.object(fields, |out, field| {
            match field {
                IssueField::Typename => out.string("Issue"),
                IssueField::Id => out.id(issue.id.0),
                IssueField::Number => out.integer(issue.number.into()),
                IssueField::Kind => out.name(IssueKind::from(issue.kind))?,
                IssueField::Title => out.string(&issue.title),
                IssueField::Description => out.string(&issue.description),
                IssueField::Status => out.name(IssueStatus::from(issue.status))?,
                IssueField::CreatedAt => out.time(issue.created_at),
                IssueField::UpdatedAt => out.time(issue.updated_at),
                IssueField::ClosedAt => out.optional_time(issue.closed_at),
                IssueField::DeletedAt => out.optional_time(issue.deleted_at),
                IssueField::CreatedBy(fields) => out.person(fields, creator?)?,
                IssueField::AssignedTo(fields) => match (assignee, issue.assigned_to) {
                    (Some(assignee), _) => out.person(fields, assignee)?,
                    (None, None) => out.null(),
                    (None, Some(_)) => return None,
                },
            }
            Some(())
        })
    }

    fn person(&mut self, fields: &Object<UserField>, person: &Profile) -> Option<()> {
        self.object(fields, |out, field| {
            match field {
                UserField::Typename => out.string("User"),
                UserField::Id => out.id(person.id.0),
                UserField::Username => out.string(&person.username),
                UserField::FirstName => out.string(&person.first_name),
                UserField::LastName => out.string(&person.last_name),
                UserField::CreatedAt => out.time(person.created_at),
            }
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str) -> Option<Plan> {
        Plan::compile(&async_graphql::parser::parse_query(query).ok()?)
    }

    #[test]
    fn integers_are_written_as_serde_json_writes_them() {
        for n in
            [i128::from(i64::MIN), -10, -1, 0, 7, 10, 99, 100, i128::from(i64::MAX), i128::from(u64::MAX)]
        {
            let mut out = Json(Vec::new());
            out.integer(n);
            assert_eq!(String::from_utf8(out.0).unwrap(), serde_json::to_string(&n).unwrap());
        }
    }

    #[test]
    fn plans_cover_only_what_they_can_answer() {
        let covered = [
            "{ issue(id: 1) { id title } }",
            "query($a: ID, $n: Int = 5) { issues(first: $n, filter: {assignedTo: $a}) { totalCount nodes { id } } }",
            "query Q { a: issues { ...P } } fragment P on IssueConnection { edges { cursor } pageInfo { endCursor } }",
            "{ __typename issues { nodes { ... on Issue { createdBy { username } } } } }",
        ];
        for query in covered {
            assert!(plan(query).is_some(), "{query}");
        }
        let left_to_the_executor = [
            "mutation { logout(input: {}) { ok } }",
            "{ me { id } }",
            "{ issue(id: 1) { id id } }",
            "{ a: issue(id: 1) { id } a: issue(id: 2) { id } }",
            "{ issue(id: 1) { id @include(if: true) } }",
            "{ issue(id: 1) { project { id } } }",
            "{ issues { nodes { createdBy { email } } } }",
            "query($f: IssueFilter) { issues(filter: $f) { totalCount } }",
            "{ issues { ...P } } fragment P on UserConnection { totalCount }",
            "query A { issue(id: 1) { id } } query B { issue(id: 2) { id } }",
            "{ __schema { types { name } } }",
            "{ issues { totalCount } __typename }",
            "{ a: issues { totalCount } b: issues { totalCount } }",
            "{ issue(id: 1) { createdBy { id } } }",
        ];
        for query in left_to_the_executor {
            assert!(plan(query).is_none(), "{query}");
        }
    }

    #[test]
    fn a_plan_holds_at_most_max_fields() {
        let fields = |n: usize| (0..n).map(|i| format!("f{i}: id")).collect::<Vec<_>>().join(" ");
        let spread =
            |n: usize| (0..n).map(|i| format!("c{i}: createdBy {{ ...P }}")).collect::<Vec<_>>().join(" ");
        let query = |people: usize, each: usize| {
            format!(
                "{{ issues {{ nodes {{ {} }} }} }} fragment P on User {{ {} }}",
                spread(people),
                fields(each)
            )
        };
        assert!(plan(&query(10, 90)).is_some_and(|plan| plan.fields() == 2 + 10 * 91));
        assert!(plan(&query(20, 90)).is_none(), "a fragment spread into many places");
    }

    #[test]
    fn variables_must_fit_as_they_are() {
        let variable =
            |scalar, nullable, default| Variable { name: Name::new("v"), scalar, nullable, default };
        let number = |n: i64| ConstValue::Number(n.into());
        assert!(variable(Scalar::Id, false, None).fits(Some(&number(3))));
        assert!(!variable(Scalar::Id, false, None).fits(Some(&ConstValue::Boolean(true))));
        assert!(!variable(Scalar::Id, false, None).fits(None));
        assert!(!variable(Scalar::Id, false, None).fits(Some(&ConstValue::Null)));
        assert!(variable(Scalar::Id, true, Some(ConstValue::Null)).fits(None));
        assert!(variable(Scalar::Int, true, None).fits(Some(&number(i64::from(i32::MAX)))));
        assert!(!variable(Scalar::Int, true, None).fits(Some(&number(i64::from(i32::MAX) + 1))));
        assert!(!variable(Scalar::String, true, None).fits(Some(&number(1))));
        assert!(variable(Scalar::Boolean, true, None).fits(Some(&ConstValue::Boolean(false))));
    }
}
