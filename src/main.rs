use std::{io::IsTerminal as _, process::ExitCode};

use anyhow::Context as _;
use clap::Parser as _;
use migration::{Migrator, MigratorTrait as _};
use tracing_subscriber::{
    EnvFilter, Layer, Registry, filter::Targets, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};
use triage::{
    auth::{PasswordHasher, TokenKeys},
    config::{Cli, Command, Config, LogFormat, MigrateAction, UserAction, UserCreateArgs},
    domain::{self, users::NewUser, values},
    entity::users::Role,
    startup::{Application, connect},
};

/// jemalloc in place of glibc's malloc (`.cargo/config.toml` sets its defaults): a
/// fifth less CPU for a page of issues and a sixth less for one issue. It takes
/// `malloc` itself too (the crate's `unprefixed_malloc_on_supported_platforms`), so
/// SQLite's C code shares its arenas instead of growing glibc's one per connection
/// thread: about 2 MiB less at the peak of the benchmark's scenarios 1 and 6.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; settings then come from flags and the environment.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let (log, format) = match &cli.command {
        Some(Command::Serve(config)) => (config.log.clone(), config.log_format),
        _ => (cli.serve.log.clone(), cli.serve.log_format),
    };
    init_logging(&log, format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error, as `TRIAGE_LOG` filters and `TRIAGE_LOG_FORMAT` says.
fn init_logging(filter: &str, format: LogFormat) {
    let logs = fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        // Colour codes are for a person at a terminal; in a file or a pipe to a
        // collector they are noise. tracing-subscriber colours whatever the output
        // is, unless told; `NO_COLOR` (https://no-color.org) turns colour off too.
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            logs.with_ansi(std::io::stderr().is_terminal() && !no_color).boxed()
        }
        // The event's fields at the top level, where collectors index them; every
        // span of the line (the request's, with its id) in `spans`.
        LogFormat::Json => {
            logs.json().flatten_event(true).with_current_span(false).with_span_list(true).boxed()
        }
    };
    tracing_subscriber::registry().with(log_filter(filter)).with(logs).init();
}

/// The filter a `TRIAGE_LOG` value says.
///
/// Targets and levels alone (`warn`, `info,tower_http=debug`), the usual case, are
/// decided once for each place that logs: a `Targets` filter keeps nothing per span.
/// `EnvFilter` is kept for what only it reads (span and field directives such as
/// `[request{request_id=abc}]=debug`), as it must then follow every span: it takes a
/// lock shared by every thread each time a span is made, entered, left or closed,
/// which is at every poll of every request (7,000 instructions of scenario 2's
/// 147,000, issue #12).
fn log_filter(spec: &str) -> Box<dyn Layer<Registry> + Send + Sync> {
    if let Some(targets) = targets_only(spec) {
        return targets.boxed();
    }
    EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info")).boxed()
}

/// `spec` as a `Targets` filter, when it is only targets and levels, each directive
/// as `EnvFilter` reads it. Anything else (span or field directives, an empty
/// directive, which `Targets` would read as every target at every level) is left to
/// `EnvFilter`.
fn targets_only(spec: &str) -> Option<Targets> {
    let plain = |directive: &str| {
        !directive.is_empty()
            && directive.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"_:=-".contains(&byte))
    };
    if !spec.split(',').all(plain) {
        return None;
    }
    spec.parse().ok()
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(*config).await,
        Some(Command::Schema) => {
            print!("{}", triage::graphql::sdl());
            Ok(())
        }
        Some(Command::TokenKey) => {
            println!("{}", TokenKeys::generate_paserk()?);
            Ok(())
        }
        Some(Command::Migrate { action, database }) => {
            let db = connect(&database, None).await?;
            match action {
                MigrateAction::Up => Migrator::up(&db, None).await?,
                MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
                MigrateAction::Status => {
                    for migration in Migrator::get_migration_with_status(&db).await? {
                        println!("{:?}\t{}", migration.status(), migration.name());
                    }
                }
            }
            Ok(())
        }
        Some(Command::User { action: UserAction::Create(args) }) => create_user(args).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped().await
}

async fn create_user(args: UserCreateArgs) -> anyhow::Result<()> {
    let db = connect(&args.database, None).await?;
    Migrator::up(&db, None).await.context("applying database migrations")?;
    let new = NewUser {
        username: values::Username::parse(args.username)?,
        email: values::Email::parse(args.email)?,
        first_name: values::PersonName::parse(args.first_name, "firstName")?,
        last_name: values::PersonName::parse(args.last_name, "lastName")?,
        password: values::Password::parse(args.password.expose().to_owned())?,
        role: if args.member { Role::Member } else { Role::Admin },
    };
    // Alone on its thread: nothing to queue behind.
    let hasher = PasswordHasher::new(1, std::time::Duration::from_secs(60))?;
    let user = domain::users::register(&db, &hasher, new, None).await?;
    println!("created user {} (id {})", user.username, user.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use tracing::{Level, level_filters::LevelFilter};

    use super::targets_only;

    #[test]
    fn targets_and_levels_alone_are_read_as_targets() {
        let targets = targets_only("info,tower_http=debug,triage::http=warn");
        let targets = targets.as_ref();
        assert_eq!(targets.map(|t| t.default_level()), Some(Some(LevelFilter::INFO)));
        assert!(targets.is_some_and(|t| t.would_enable("tower_http::trace", &Level::DEBUG)));
        assert!(targets.is_some_and(|t| !t.would_enable("triage::http", &Level::INFO)));
        assert!(targets.is_some_and(|t| !t.would_enable("hyper", &Level::DEBUG)));
    }

    #[test]
    fn span_field_and_empty_directives_are_left_to_env_filter() {
        for spec in ["[request]=debug", "triage[{user_id}]=debug", "info,", "", "info, triage=debug"] {
            assert!(targets_only(spec).is_none(), "{spec:?}");
        }
    }
}
