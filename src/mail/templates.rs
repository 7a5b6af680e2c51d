//! The email templates: files under `templates/`, compiled into the binary and
//! rendered with minijinja (HTML-escaped in the `.html` parts).

use minijinja::Environment;
use serde::Serialize;

use crate::{Error, Result};

/// An issue as an email shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IssueSummary {
    pub id: i64,
    /// `WEB-42`.
    pub key: String,
    pub title: String,
    /// As the API spells it: `OPEN`, `IN_PROGRESS`, `CLOSED`.
    pub status: String,
    pub description: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct AssignmentEmail {
    pub recipient_name: String,
    pub actor_name: String,
    pub issue: IssueSummary,
}

#[derive(Debug, Serialize)]
pub struct DigestGroup {
    pub status: String,
    pub issues: Vec<IssueSummary>,
}

/// One project's part of a digest.
#[derive(Debug, Serialize)]
pub struct DigestProject {
    pub key: String,
    pub name: String,
    /// How many issues its groups hold.
    pub total: usize,
    pub groups: Vec<DigestGroup>,
}

#[derive(Debug, Serialize)]
pub struct DigestEmail {
    pub recipient_name: String,
    pub total: usize,
    pub open: usize,
    pub projects: Vec<DigestProject>,
}

/// An invitation to a project, with the link that accepts it.
#[derive(Debug, Serialize)]
pub struct InvitationEmail {
    pub inviter_name: String,
    pub project_key: String,
    pub project_name: String,
    /// As the API spells it: `VIEWER`, `MEMBER`, `ADMIN`.
    pub role: String,
    pub url: String,
    /// When the link stops working, for people (`2026-12-11 09:30 UTC`).
    pub expires_at: String,
}

/// Subject, plain text and HTML of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Self> {
        let mut env = Environment::new();
        let files = [
            ("assignment.txt", include_str!("templates/assignment.txt")),
            ("assignment.html", include_str!("templates/assignment.html")),
            ("digest.txt", include_str!("templates/digest.txt")),
            ("digest.html", include_str!("templates/digest.html")),
            ("invitation.txt", include_str!("templates/invitation.txt")),
            ("invitation.html", include_str!("templates/invitation.html")),
        ];
        for (name, source) in files {
            env.add_template(name, source).map_err(template_error)?;
        }
        Ok(Self { env })
    }

    pub fn assignment(&self, email: &AssignmentEmail) -> Result<Rendered> {
        Ok(Rendered {
            subject: format!("[{}] {}", email.issue.key, email.issue.title),
            text: self.render("assignment.txt", email)?,
            html: self.render("assignment.html", email)?,
        })
    }

    pub fn digest(&self, email: &DigestEmail) -> Result<Rendered> {
        let plural = if email.total == 1 { "" } else { "s" };
        Ok(Rendered {
            subject: format!(
                "[Triage] Your digest: {} issue{plural} assigned to you, {} open",
                email.total, email.open
            ),
            text: self.render("digest.txt", email)?,
            html: self.render("digest.html", email)?,
        })
    }

    pub fn invitation(&self, email: &InvitationEmail) -> Result<Rendered> {
        Ok(Rendered {
            subject: format!(
                "[Triage] {} invited you to {} ({})",
                email.inviter_name, email.project_name, email.project_key
            ),
            text: self.render("invitation.txt", email)?,
            html: self.render("invitation.html", email)?,
        })
    }

    fn render(&self, name: &str, context: impl Serialize) -> Result<String> {
        self.env.get_template(name).and_then(|t| t.render(context)).map_err(template_error)
    }
}

fn template_error(err: minijinja::Error) -> Error {
    Error::internal(format!("email template: {err:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(id: i64, title: &str, status: &'static str) -> IssueSummary {
        IssueSummary {
            id,
            key: format!("WEB-{id}"),
            title: title.to_owned(),
            status: status.to_owned(),
            description: "Steps: <click>".to_owned(),
            url: format!("https://triage.example/issues/{id}"),
        }
    }

    #[test]
    fn assignment_parts_carry_the_same_facts_and_html_is_escaped() -> Result<()> {
        let email = AssignmentEmail {
            recipient_name: "Bob".into(),
            actor_name: "Ada".into(),
            issue: issue(7, "Crash on <save>", "OPEN"),
        };
        let rendered = Templates::new()?.assignment(&email)?;
        assert_eq!(rendered.subject, "[WEB-7] Crash on <save>");
        // minijinja also escapes `/`, which browsers read back as it was.
        let html = rendered.html.replace("&#x2f;", "/");
        for fact in ["Bob", "Ada", "WEB-7", "OPEN", "https://triage.example/issues/7"] {
            assert!(rendered.text.contains(fact) && html.contains(fact), "{fact}");
        }
        assert!(rendered.text.contains("Crash on <save>"));
        assert!(rendered.html.contains("Crash on &lt;save&gt;") && !rendered.html.contains("<save>"));
        Ok(())
    }

    #[test]
    fn digest_groups_by_project_then_status_with_counts() -> Result<()> {
        let group = |status: &str, issues| DigestGroup { status: status.to_owned(), issues };
        let email = DigestEmail {
            recipient_name: "Bob".into(),
            total: 3,
            open: 2,
            projects: vec![
                DigestProject {
                    key: "API".to_owned(),
                    name: "Backend".to_owned(),
                    total: 1,
                    groups: vec![group("CLOSED", vec![issue(3, "Three", "CLOSED")])],
                },
                DigestProject {
                    key: "WEB".to_owned(),
                    name: "Website".to_owned(),
                    total: 2,
                    groups: vec![group("OPEN", vec![issue(1, "One", "OPEN"), issue(2, "Two", "OPEN")])],
                },
            ],
        };
        let rendered = Templates::new()?.digest(&email)?;
        assert!(rendered.subject.contains("3 issues") && rendered.subject.contains("2 open"));
        let at = |needle: &str| rendered.text.find(needle).unwrap_or(usize::MAX);
        assert!(at("Backend (API)") < at("CLOSED (1)"), "{}", rendered.text);
        assert!(at("CLOSED (1)") < at("Website (WEB)"), "{}", rendered.text);
        assert!(
            at("Website (WEB)") < at("OPEN (2)") && at("OPEN (2)") < at("WEB-2 Two"),
            "{}",
            rendered.text
        );
        for fact in ["Backend (API)", "Website (WEB)", "OPEN (2)", "CLOSED (1)", "WEB-1 One"] {
            assert!(rendered.html.contains(fact), "{fact}: {}", rendered.html);
        }
        Ok(())
    }
}
