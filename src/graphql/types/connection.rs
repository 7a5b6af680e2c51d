use async_graphql::{Context, Object};

use super::{Invitation, Issue, Project, ProjectMember, User};
use crate::domain::page::{Cursor, Page, PageArgs};

/// Relay paging information.
#[derive(Debug, Clone)]
pub struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<Cursor>,
    end_cursor: Option<Cursor>,
}

/// Relay paging information.
#[Object]
impl PageInfo {
    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }

    async fn has_previous_page(&self) -> bool {
        self.has_previous_page
    }

    async fn start_cursor(&self) -> Option<String> {
        self.start_cursor.as_ref().map(Cursor::encode)
    }

    async fn end_cursor(&self) -> Option<String> {
        self.end_cursor.as_ref().map(Cursor::encode)
    }
}

/// Declares a Relay connection type and its edge type for one node type.
macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ty, $doc:literal) => {
        /// One item of a page and where it stands.
        #[derive(Debug, Clone)]
        pub struct $edge {
            cursor: Cursor,
            node: $node,
        }

        /// One item of a page and where it stands.
        #[Object]
        impl $edge {
            /// Pass as `after` or `before` to page from here.
            async fn cursor(&self) -> String {
                self.cursor.encode()
            }

            async fn node(&self) -> &$node {
                &self.node
            }
        }

        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $connection {
            edges: Vec<$edge>,
            page_info: PageInfo,
            total_count: u64,
        }

        #[doc = $doc]
        ///
        /// `first`/`after` page forwards, `last`/`before` backwards; a page holds 20
        /// items unless told otherwise, 100 at most.
        #[Object]
        impl $connection {
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// The nodes of `edges`, for clients that need no cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|edge| &edge.node).collect()
            }

            async fn page_info(&self) -> &PageInfo {
                &self.page_info
            }

            /// How many items the whole list holds, across pages.
            async fn total_count(&self) -> u64 {
                self.total_count
            }
        }

        impl $connection {
            pub fn from_page<M>(page: Page<M>, wrap: impl Fn(M) -> $node) -> Self {
                let edges: Vec<$edge> =
                    page.items.into_iter().map(|(cursor, item)| $edge { cursor, node: wrap(item) }).collect();
                let page_info = PageInfo {
                    has_next_page: page.has_next_page,
                    has_previous_page: page.has_previous_page,
                    start_cursor: edges.first().map(|edge| edge.cursor),
                    end_cursor: edges.last().map(|edge| edge.cursor),
                };
                Self { edges, page_info, total_count: page.total_count.unwrap_or_default() }
            }
        }
    };
}

connection!(IssueConnection, IssueEdge, Issue, "A page of issues.");
connection!(UserConnection, UserEdge, User, "A page of users.");
connection!(ProjectConnection, ProjectEdge, Project, "A page of projects.");
connection!(ProjectMemberConnection, ProjectMemberEdge, ProjectMember, "A page of a project's members.");
connection!(InvitationConnection, InvitationEdge, Invitation, "A page of a project's invitations.");

/// Whether the selection asks for `totalCount`, which costs a COUNT query.
pub fn wants_total_count(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

pub fn page_args(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> PageArgs {
    PageArgs { first, after, last, before }
}
