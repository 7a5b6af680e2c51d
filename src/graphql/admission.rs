//! Admission: what an operation may cost, decided before anything executes.
//!
//! Every operation, over POST, GET or WebSocket, is priced here from its parsed
//! document before async-graphql validates it. async-graphql's validation walks a
//! fragment's selections again at every spread of it (its depth, complexity and
//! cache-control visitors run in "inline" mode, with no memo), so a chain of
//! fragments that each spread the next twice costs 2^n there. Here each fragment is
//! priced once, and a spread adds the price already known, so any document is priced
//! in time linear in its size, and one whose expansion is too big never reaches the
//! validator.
//!
//! The price, in the manner of GitHub's node limit:
//! - **nodes**: every field counts one for each time it can be resolved, in the
//!   worst case. A connection field (`issues`, `assignedIssues`, ...) multiplies what
//!   is selected under it by its `first`/`last` (20 when absent, 100 at most), so
//!   `issues(first: 100) { nodes { title } }` costs 1 + 100 × 2.
//! - **introspection nodes**: fields under `__schema`/`__type`, where each list
//!   (`types`, `fields`, `args`, ...) multiplies by the longest such list in this
//!   schema. They have a limit of their own, twice the price of the standard
//!   introspection query of graphql-js, so every playground and code generator can
//!   load the schema whatever `TRIAGE_MAX_NODES` says.
//! - **depth**: fields nested in fields, where introspection's `ofType` chain does not
//!   count.
//! - **root fields** of a mutation, and how many of them spend a password hash or a
//!   refresh token (`register`, `login`, `refreshToken`, `updateMe` with a password).
//!
//! A batch is one request: [`Tally`] adds its operations up against every limit.

use std::collections::{HashMap, HashSet};

use async_graphql::{
    Name, Positioned, ServerError, Value, Variables,
    parser::types::{
        BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
        TypeDefinition, TypeKind, TypeSystemDefinition,
    },
};

use super::error_codes::{QUERY_TOO_COMPLEX, VALIDATION_FAILED, with_code};
use crate::domain::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// The standard introspection query of graphql-js 16 with every option on
/// (`descriptions`, `specifiedByUrl`, `directiveIsRepeatable`, `schemaDescription`,
/// `inputValueDeprecation`): what GraphiQL, Apollo Sandbox and codegen send.
pub const STANDARD_INTROSPECTION_QUERY: &str = include_str!("introspection.graphql");

/// Fragment spreads nested deeper than this are refused: no real document needs it,
/// and the walk below recurses once per level.
const MAX_SPREAD_NESTING: usize = 64;

/// Selection sets nested in one another, through fragments included, past which the
/// walk stops: far beyond any depth the limits admit, well within a thread's stack.
const MAX_NESTING: usize = 128;

/// The limits an operation is admitted under.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionLimits {
    /// Worst-case nodes of one request (`TRIAGE_MAX_NODES`).
    pub max_nodes: u64,
    /// Deepest field nesting (`TRIAGE_MAX_QUERY_DEPTH`).
    pub max_depth: usize,
    /// Root fields of the mutations of one request (`TRIAGE_MAX_ROOT_FIELDS`).
    pub max_root_fields: u64,
    /// Whether `__schema` and `__type` may be asked for (`TRIAGE_INTROSPECTION`).
    pub introspection: bool,
}

/// The pricing rules for one schema.
#[derive(Debug)]
pub struct Admission {
    limits: AdmissionLimits,
    shape: SchemaShape,
    introspection_limit: u64,
}

/// What one operation costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    pub nodes: u64,
    pub introspection_nodes: u64,
    pub depth: usize,
    pub root_fields: u64,
    /// Root fields that spend a password hash or a refresh token.
    pub credential_fields: u64,
    pub is_mutation: bool,
}

/// The running total of a request's operations (a batch is one request).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub nodes: u64,
    pub introspection_nodes: u64,
    pub mutation_fields: u64,
    pub credential_fields: u64,
}

impl Tally {
    /// The rate-limit points of the request: a query costs its nodes / 100 (at least
    /// one), each mutation root field five.
    pub fn points(&self) -> u64 {
        (self.nodes / 100 + 5 * self.mutation_fields).max(1)
    }
}

impl Admission {
    /// The rules for the schema whose SDL is `sdl`.
    pub fn new(sdl: &str, limits: AdmissionLimits) -> anyhow::Result<Self> {
        let shape = SchemaShape::read(sdl)?;
        let open = AdmissionLimits { introspection: true, ..limits };
        let mut admission = Self { limits: open, shape, introspection_limit: u64::MAX };
        let mut standard = async_graphql::Request::new(STANDARD_INTROSPECTION_QUERY);
        let document = standard
            .parsed_query()
            .map_err(|err| anyhow::anyhow!("the bundled introspection query: {}", err.message))?;
        let price = admission
            .price(document, None, &Variables::default())
            .map_err(|err| anyhow::anyhow!("pricing the introspection query: {}", err.message))?;
        admission.introspection_limit = price.introspection_nodes.saturating_mul(2);
        admission.limits = limits;
        Ok(admission)
    }

    pub fn limits(&self) -> AdmissionLimits {
        self.limits
    }

    /// Prices the operation a request runs (every fragment of the document is priced
    /// too, used or not, since validation walks them all), refusing it when it is
    /// deeper than allowed or spreads fragments in a cycle.
    pub fn price(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
    ) -> Result<Price, ServerError> {
        let variables = with_defaults(document, operation_name, variables);
        let mut walker = Walker {
            document,
            variables: &variables,
            shape: &self.shape,
            memo: HashMap::new(),
            spreading: Vec::new(),
            nesting: 0,
        };
        let mut worst = Summary::default();
        for name in document.fragments.keys() {
            for mode in [Mode::Data, Mode::Introspection] {
                worst = worst.max(walker.fragment(name, mode)?);
            }
        }
        let mut chosen = None;
        for (name, operation) in operations(document) {
            let summary = walker.set(&operation.node.selection_set.node, Mode::Data)?;
            worst = worst.max(summary);
            let named = match (operation_name, name) {
                (Some(wanted), Some(name)) => wanted == name.as_str(),
                (None, _) => true,
                (Some(_), None) => false,
            };
            if named && chosen.is_none() {
                chosen = Some((operation.node.ty, summary));
            }
        }
        // Validation walks every operation and fragment: the worst of them is priced
        // against the limits, and the chosen one is what the request is charged.
        self.check(&worst)?;
        if !self.limits.introspection && worst.introspects {
            return Err(with_code(
                ServerError::new("Introspection is turned off on this server", None),
                VALIDATION_FAILED,
            ));
        }
        let (ty, summary) = chosen.unwrap_or((OperationType::Query, Summary::default()));
        self.check_depth(summary.depth)?;
        Ok(Price {
            nodes: summary.nodes,
            introspection_nodes: summary.introspection,
            depth: summary.depth,
            root_fields: summary.fields,
            credential_fields: summary.credentials,
            is_mutation: ty == OperationType::Mutation,
        })
    }

    /// Adds `price` to a request's `tally`, refusing the request when the sum passes a
    /// limit.
    pub fn admit(&self, tally: &mut Tally, price: &Price) -> Result<(), ServerError> {
        let mut next = *tally;
        next.nodes = next.nodes.saturating_add(price.nodes);
        next.introspection_nodes = next.introspection_nodes.saturating_add(price.introspection_nodes);
        if price.is_mutation {
            next.mutation_fields += price.root_fields;
            next.credential_fields += price.credential_fields;
        }
        self.check_nodes(next.nodes)?;
        self.check_introspection(next.introspection_nodes)?;
        if next.mutation_fields > self.limits.max_root_fields {
            return Err(too_complex(
                format!(
                    "A request may run at most {} mutation fields; this one has {}",
                    self.limits.max_root_fields, next.mutation_fields
                ),
                [("rootFields", next.mutation_fields), ("limit", self.limits.max_root_fields)],
            ));
        }
        if next.credential_fields > 1 {
            return Err(too_complex(
                "A request may run at most one of register, login, refreshToken and updateMe with a \
                 password"
                    .to_owned(),
                [("credentialFields", next.credential_fields), ("limit", 1)],
            ));
        }
        *tally = next;
        Ok(())
    }

    fn check(&self, summary: &Summary) -> Result<(), ServerError> {
        self.check_depth(summary.depth)?;
        self.check_nodes(summary.nodes)?;
        self.check_introspection(summary.introspection)
    }

    fn check_nodes(&self, nodes: u64) -> Result<(), ServerError> {
        if nodes <= self.limits.max_nodes {
            return Ok(());
        }
        Err(too_complex(
            format!(
                "This request could return {nodes} nodes; the limit is {}. Ask for smaller pages \
                 (`first`/`last`) or fewer nested lists",
                self.limits.max_nodes
            ),
            [("cost", nodes), ("limit", self.limits.max_nodes)],
        ))
    }

    fn check_introspection(&self, nodes: u64) -> Result<(), ServerError> {
        if nodes <= self.introspection_limit {
            return Ok(());
        }
        Err(too_complex(
            format!(
                "This introspection could return {nodes} nodes; the limit is {}",
                self.introspection_limit
            ),
            [("cost", nodes), ("limit", self.introspection_limit)],
        ))
    }

    fn check_depth(&self, depth: usize) -> Result<(), ServerError> {
        if depth <= self.limits.max_depth {
            return Ok(());
        }
        Err(too_complex(
            format!("This request nests fields {depth} deep; the limit is {}", self.limits.max_depth),
            [("depth", depth as u64), ("limit", self.limits.max_depth as u64)],
        ))
    }
}

/// The variables a request runs with: those sent, and the defaults its operation
/// declares for the rest (which async-graphql would use).
fn with_defaults(document: &ExecutableDocument, operation_name: Option<&str>, sent: &Variables) -> Variables {
    let chosen = operations(document).into_iter().find(|(name, _)| match (operation_name, name) {
        (Some(wanted), Some(name)) => wanted == name.as_str(),
        (None, _) => true,
        (Some(_), None) => false,
    });
    let mut variables = sent.clone();
    for definition in chosen.iter().flat_map(|(_, operation)| &operation.node.variable_definitions) {
        let definition = &definition.node;
        if !variables.contains_key(&definition.name.node)
            && let Some(default) = definition.default_value()
        {
            variables.insert(definition.name.node.clone(), default.clone());
        }
    }
    variables
}

fn too_complex<const N: usize>(message: String, extensions: [(&str, u64); N]) -> ServerError {
    let mut error = with_code(ServerError::new(message, None), QUERY_TOO_COMPLEX);
    let ext = error.extensions.get_or_insert_with(Default::default);
    for (key, value) in extensions {
        ext.set(key, Value::from(value));
    }
    error
}

fn operations(
    document: &ExecutableDocument,
) -> Vec<(Option<&Name>, &Positioned<async_graphql::parser::types::OperationDefinition>)> {
    match &document.operations {
        DocumentOperations::Single(operation) => vec![(None, operation)],
        DocumentOperations::Multiple(operations) => {
            operations.iter().map(|(name, operation)| (Some(name), operation)).collect()
        }
    }
}

/// Whether fields are counted as data or as introspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Data,
    Introspection,
}

/// The price of a selection set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Summary {
    nodes: u64,
    introspection: u64,
    depth: usize,
    /// Fields at this level, through fragments included.
    fields: u64,
    credentials: u64,
    /// Whether it asks for `__schema` or `__type`.
    introspects: bool,
}

impl Summary {
    fn add(&mut self, other: Self) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.introspection = self.introspection.saturating_add(other.introspection);
        self.depth = self.depth.max(other.depth);
        self.fields = self.fields.saturating_add(other.fields);
        self.credentials = self.credentials.saturating_add(other.credentials);
        self.introspects |= other.introspects;
    }

    /// The worse of two, limit by limit.
    fn max(self, other: Self) -> Self {
        Self {
            nodes: self.nodes.max(other.nodes),
            introspection: self.introspection.max(other.introspection),
            depth: self.depth.max(other.depth),
            fields: self.fields.max(other.fields),
            credentials: self.credentials.max(other.credentials),
            introspects: self.introspects || other.introspects,
        }
    }
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    shape: &'a SchemaShape,
    memo: HashMap<(&'a str, Mode), Summary>,
    /// The fragments being priced, innermost last: a spread of one of them is a cycle.
    spreading: Vec<&'a str>,
    /// Selection sets entered and not yet left, to bound the walk's recursion.
    nesting: usize,
}

impl<'a> Walker<'a> {
    fn fragment(&mut self, name: &'a str, mode: Mode) -> Result<Summary, ServerError> {
        if let Some(summary) = self.memo.get(&(name, mode)) {
            return Ok(*summary);
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            // Refused here rather than priced as nothing: async-graphql's own walks
            // follow every spread before they notice the unknown one at the bottom.
            return Err(with_code(
                ServerError::new(format!("Unknown fragment \"{name}\"."), None),
                VALIDATION_FAILED,
            ));
        };
        if self.spreading.contains(&name) {
            return Err(with_code(
                ServerError::new(format!("Cannot spread fragment \"{name}\" within itself."), None),
                VALIDATION_FAILED,
            ));
        }
        if self.spreading.len() >= MAX_SPREAD_NESTING {
            return Err(too_complex(
                format!("Fragments may spread each other at most {MAX_SPREAD_NESTING} deep"),
                [("limit", MAX_SPREAD_NESTING as u64)],
            ));
        }
        self.spreading.push(name);
        let summary = self.set(&fragment.node.selection_set.node, mode);
        self.spreading.pop();
        let summary = summary?;
        self.memo.insert((name, mode), summary);
        Ok(summary)
    }

    fn set(&mut self, set: &'a SelectionSet, mode: Mode) -> Result<Summary, ServerError> {
        if self.nesting >= MAX_NESTING {
            return Err(too_complex(
                format!("Selections may nest at most {MAX_NESTING} deep, fragments included"),
                [("limit", MAX_NESTING as u64)],
            ));
        }
        self.nesting += 1;
        let summary = self.items(set, mode);
        self.nesting -= 1;
        summary
    }

    fn items(&mut self, set: &'a SelectionSet, mode: Mode) -> Result<Summary, ServerError> {
        let mut summary = Summary::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let child_mode =
                        if matches!(name, "__schema" | "__type") { Mode::Introspection } else { mode };
                    let times = self.multiplier(field, child_mode);
                    let children = self.set(&field.selection_set.node, child_mode)?;
                    let own_depth = usize::from(name != "ofType");
                    let mut own = Summary {
                        nodes: children.nodes.saturating_mul(times),
                        introspection: children.introspection.saturating_mul(times),
                        depth: own_depth + children.depth,
                        fields: 1,
                        credentials: u64::from(self.spends_credentials(field)),
                        introspects: children.introspects
                            || (mode == Mode::Data && child_mode == Mode::Introspection),
                    };
                    match child_mode {
                        Mode::Data => own.nodes = own.nodes.saturating_add(1),
                        Mode::Introspection => own.introspection = own.introspection.saturating_add(1),
                    }
                    summary.add(own);
                }
                Selection::FragmentSpread(spread) => {
                    summary.add(self.fragment(spread.node.fragment_name.node.as_str(), mode)?);
                }
                Selection::InlineFragment(inline) => {
                    summary.add(self.set(&inline.node.selection_set.node, mode)?);
                }
            }
        }
        Ok(summary)
    }

    /// How many times what is selected under `field` can be resolved per resolution
    /// of the field.
    fn multiplier(&self, field: &async_graphql::parser::types::Field, mode: Mode) -> u64 {
        let name = field.name.node.as_str();
        match mode {
            Mode::Introspection => self.shape.introspection_list(name),
            Mode::Data if self.shape.connections.contains(name) => {
                let size = |argument: &str| {
                    field.get_argument(argument).map(|value| {
                        match value.node.clone().into_const_with(|var| self.variable(&var)) {
                            Ok(Value::Number(n)) => n.as_u64().unwrap_or(0).min(MAX_PAGE_SIZE),
                            // Not a number: validation refuses it; price the largest page.
                            Ok(Value::Null) => DEFAULT_PAGE_SIZE,
                            _ => MAX_PAGE_SIZE,
                        }
                    })
                };
                match (size("first"), size("last")) {
                    (None, None) => DEFAULT_PAGE_SIZE,
                    // A page of none is still a selection to validate and plan: priced
                    // as one item, so that `first: 0` cannot hide any size of it.
                    (first, last) => first.unwrap_or(0).max(last.unwrap_or(0)).max(1),
                }
            }
            Mode::Data => 1,
        }
    }

    fn variable(&self, name: &Name) -> Result<Value, std::convert::Infallible> {
        Ok(self.variables.get(name).cloned().unwrap_or(Value::Null))
    }

    /// Whether the field's `input` sets `name` to something other than null.
    fn input_has(&self, field: &async_graphql::parser::types::Field, name: &str) -> bool {
        field.get_argument("input").is_some_and(|input| {
            match input.node.clone().into_const_with(|var| self.variable(&var)) {
                Ok(Value::Object(fields)) => fields.get(name).is_some_and(|value| *value != Value::Null),
                _ => false,
            }
        })
    }

    /// Whether a root field spends a password hash or a refresh token.
    fn spends_credentials(&self, field: &async_graphql::parser::types::Field) -> bool {
        match field.name.node.as_str() {
            "register" | "login" | "refreshToken" => true,
            "updateMe" => self.input_has(field, "password"),
            "acceptInvitation" => self.input_has(field, "register"),
            _ => false,
        }
    }
}

/// What pricing needs to know of the schema: which fields are connections, and how
/// long introspection's lists can be.
#[derive(Debug, Default)]
struct SchemaShape {
    connections: HashSet<String>,
    types: u64,
    fields: u64,
    args: u64,
    input_fields: u64,
    enum_values: u64,
    possible_types: u64,
    directives: u64,
}

/// Introspection's own types, which `types` lists beside the schema's: `__Type` has
/// the most fields (11), `__Type.fields` and friends one argument.
const INTROSPECTION_TYPES: u64 = 8;
const INTROSPECTION_FIELDS: u64 = 11;
const BUILT_IN_SCALARS: u64 = 5;
/// `__DirectiveLocation` has 19 values, more than any enum of ours is likely to.
const INTROSPECTION_ENUM_VALUES: u64 = 19;

impl SchemaShape {
    fn read(sdl: &str) -> anyhow::Result<Self> {
        let document = async_graphql::parser::parse_schema(sdl)
            .map_err(|err| anyhow::anyhow!("parsing the SDL: {err}"))?;
        let mut shape = Self {
            types: INTROSPECTION_TYPES + BUILT_IN_SCALARS,
            fields: INTROSPECTION_FIELDS,
            args: 1,
            enum_values: INTROSPECTION_ENUM_VALUES,
            ..Self::default()
        };
        for definition in &document.definitions {
            match definition {
                TypeSystemDefinition::Type(ty) => shape.add_type(&ty.node),
                TypeSystemDefinition::Directive(directive) => {
                    shape.directives += 1;
                    shape.args = shape.args.max(directive.node.arguments.len() as u64);
                }
                TypeSystemDefinition::Schema(_) => {}
            }
        }
        // `@deprecated`, `@oneOf` and the like are not printed in the SDL.
        shape.directives += 4;
        Ok(shape)
    }

    fn add_type(&mut self, ty: &TypeDefinition) {
        self.types += 1;
        match &ty.kind {
            TypeKind::Object(object) => self.add_fields(&object.fields),
            TypeKind::Interface(interface) => self.add_fields(&interface.fields),
            TypeKind::Union(union) => {
                self.possible_types = self.possible_types.max(union.members.len() as u64)
            }
            TypeKind::Enum(values) => self.enum_values = self.enum_values.max(values.values.len() as u64),
            TypeKind::InputObject(input) => {
                self.input_fields = self.input_fields.max(input.fields.len() as u64)
            }
            TypeKind::Scalar => {}
        }
    }

    fn add_fields(&mut self, fields: &[Positioned<async_graphql::parser::types::FieldDefinition>]) {
        self.fields = self.fields.max(fields.len() as u64);
        for field in fields {
            let field = &field.node;
            self.args = self.args.max(field.arguments.len() as u64);
            if let BaseType::Named(name) = &field.ty.node.base
                && name.ends_with("Connection")
            {
                self.connections.insert(field.name.node.to_string());
            }
        }
    }

    /// How long the introspection list a field returns can be (1 for a field that is
    /// not a list).
    fn introspection_list(&self, field: &str) -> u64 {
        match field {
            "types" => self.types,
            "fields" => self.fields,
            "args" => self.args,
            "inputFields" => self.input_fields,
            "enumValues" => self.enum_values,
            "interfaces" | "possibleTypes" => self.possible_types.max(1),
            "directives" => self.directives,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        let limits =
            AdmissionLimits { max_nodes: 10_000, max_depth: 12, max_root_fields: 20, introspection: true };
        Admission::new(&crate::graphql::sdl(), limits).expect("the schema's admission rules")
    }

    fn price(query: &str) -> Result<Price, ServerError> {
        let mut request = async_graphql::Request::new(query);
        let document = request.parsed_query().expect("a parsable query").clone();
        admission().price(&document, None, &Variables::default())
    }

    fn code(error: &ServerError) -> Option<Value> {
        error.extensions.as_ref().and_then(|ext| ext.get("code").cloned())
    }

    #[test]
    fn a_connection_multiplies_what_is_under_it() {
        let price = price("{ issues(first: 50) { totalCount nodes { id title } } }").expect("admitted");
        assert_eq!(price.nodes, 1 + 50 * (1 + 1 + 2));
    }

    #[test]
    fn an_absent_page_size_counts_as_twenty_and_a_huge_one_as_a_hundred() {
        assert_eq!(price("{ issues { nodes { id } } }").map(|p| p.nodes).ok(), Some(1 + 20 * 2));
        assert_eq!(
            price("{ issues(first: 5000) { nodes { id } } }").map(|p| p.nodes).ok(),
            Some(1 + 100 * 2)
        );
    }

    #[test]
    fn a_page_of_none_is_priced_as_a_page_of_one() {
        for first in ["0", "-5"] {
            let query = format!("{{ issues(first: {first}) {{ nodes {{ id title }} }} }}");
            assert_eq!(price(&query).map(|p| p.nodes).ok(), Some(1 + 3), "first: {first}");
        }
    }

    #[test]
    fn a_doubling_fragment_chain_is_priced_without_expanding_it() {
        let mut query = String::from("query { ...F0 }\n");
        for level in 0..200 {
            query.push_str(&format!(
                "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment F200 on Query { me { id } }\n");
        let error = price(&query).expect_err("refused");
        assert_eq!(code(&error), Some(Value::from(QUERY_TOO_COMPLEX)));
    }

    #[test]
    fn a_chain_that_ends_in_an_unknown_fragment_is_refused() {
        let mut query = String::from("query { ...F0 }\n");
        for level in 0..30 {
            query.push_str(&format!(
                "fragment F{level} on Query {{ ...F{next} ...F{next} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment F30 on Query { ...Nope }\n");
        let error = price(&query).expect_err("refused");
        assert_eq!(code(&error), Some(Value::from(VALIDATION_FAILED)));
    }

    #[test]
    fn a_variable_left_out_is_priced_at_its_default() {
        let query = "query($n: Int = 100) { issues(first: $n) { nodes { id } } }";
        assert_eq!(price(query).map(|p| p.nodes).ok(), Some(1 + 100 * 2));
        let mutation = r#"mutation($i: UpdateMeInput = { password: "a new password", currentPassword: "x" }) {
            a: updateMe(input: $i) { user { id } } }"#;
        assert_eq!(price(mutation).map(|p| p.credential_fields).ok(), Some(1));
    }

    #[test]
    fn fragments_alone_do_not_count_as_introspection() {
        let plain = price("query { ...F } fragment F on Query { me { id } }").expect("admitted");
        assert_eq!(plain.introspection_nodes, 0);
        let mut request = async_graphql::Request::new("query { ...F } fragment F on Query { me { id } }");
        let document = request.parsed_query().expect("parsable").clone();
        let closed =
            AdmissionLimits { max_nodes: 10_000, max_depth: 12, max_root_fields: 20, introspection: false };
        let admission = Admission::new(&crate::graphql::sdl(), closed).expect("rules");
        assert!(admission.price(&document, None, &Variables::default()).is_ok());
        let mut request =
            async_graphql::Request::new("{ ...T } fragment T on Query { __schema { types { name } } }");
        let document = request.parsed_query().expect("parsable").clone();
        assert!(admission.price(&document, None, &Variables::default()).is_err());
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let error =
            price("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }").expect_err("cycle");
        assert_eq!(code(&error), Some(Value::from(VALIDATION_FAILED)));
    }

    #[test]
    fn the_standard_introspection_query_is_admitted() {
        let price = price(STANDARD_INTROSPECTION_QUERY).expect("admitted");
        assert_eq!(price.nodes, 0);
        assert!(price.depth <= 12, "depth {}", price.depth);
    }

    #[test]
    fn introspection_that_fans_out_is_refused() {
        let query = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
        assert!(price(query).is_err());
    }

    #[test]
    fn credential_mutations_are_counted() {
        let price = price(
            r#"mutation { a: login(input: { username: "a", password: "b" }) { accessToken }
                          b: updateMe(input: { password: "x", currentPassword: "y" }) { user { id } }
                          c: updateMe(input: { firstName: "x" }) { user { id } }
                          d: acceptInvitation(input: { token: "t", register: { email: "a@b.co", username: "abc",
                             password: "12345678", firstName: "", lastName: "" } }) { project { id } }
                          e: acceptInvitation(input: { token: "t" }) { project { id } } }"#,
        )
        .expect("priced");
        assert_eq!((price.root_fields, price.credential_fields), (5, 3));
        let mut tally = Tally::default();
        assert!(admission().admit(&mut tally, &price).is_err());
    }
}
