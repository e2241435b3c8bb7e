//! `jobctl` — the operator's tool for climate-jobs.
//!
//! * `jobctl migrate` applies the database schema (idempotent, safe to run
//!   concurrently).
//! * `jobctl canary` runs a harmless job through the full harness to prove
//!   the wiring: image, scheduler, secret, network, database, lock, ledger.
//! * `jobctl runs` shows the run history; `jobctl check` validates jobs.yaml.
//! * `jobctl datasets` lists the datasets results belong to.
//! * `jobctl report --out FILE.html` draws the run history as one HTML page.
//! * `jobctl demo-data --out DIR` writes synthetic sample inputs.
//! * `jobctl render k8s|aca|prometheus-rules` writes the scheduler
//!   manifests and the alert rules from jobs.yaml.
//! * `jobctl status` says which jobs are ok, late, failing or stuck;
//!   `jobctl metrics push` republishes the ledger's view as metrics.
//!
//! By hand: `DATABASE_URL=postgres://… jobctl migrate && jobctl canary --tasks 20`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use climate_jobs::demo::{DemoCalendar, DemoOptions};
use climate_jobs::harness::args::{DatabaseArgs, LogArgs, parse_duration};
use climate_jobs::harness::command::run_command;
use climate_jobs::harness::dead_letter;
use climate_jobs::harness::{self, CommonArgs, ExitCode};
use climate_jobs::jobs::canary::{Canary, CanaryArgs};
use climate_jobs::metrics::publish::MetricsArgs;
use climate_jobs::ops;
use climate_jobs::scope::YearRange;

#[derive(Parser)]
#[command(
    name = "jobctl",
    version,
    about = "Operate climate-jobs: schema, canary, run history, jobs.yaml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the database schema (safe to repeat and to run concurrently).
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Run N harmless tasks through the full harness (wiring check).
    Canary(CanaryCommand),
    /// Show recent runs, newest first.
    Runs {
        /// Only this job's runs.
        #[arg(long)]
        job: Option<String>,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// List the datasets (scenario, model, member, grid) results belong to,
    /// with their files and row counts.
    Datasets {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Write the run history as one self-contained HTML page: a timeline of
    /// runs per job coloured by status, duration against timeout, failed
    /// tasks and dead letters per day. Opens in a browser with no server.
    Report {
        /// The page to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Days of history, ending now (1-366).
        #[arg(long, default_value_t = ops::report::DEFAULT_DAYS)]
        days: u32,
        /// jobs.yaml, for each job's timeout [default: ./jobs.yaml if present].
        #[arg(long)]
        jobs_file: Option<PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Write synthetic sample data: one CF NetCDF per scenario and regions.csv.
    DemoData {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Grid points per file.
        #[arg(long, default_value_t = 100)]
        points: usize,
        /// Calendar years, both ends included.
        #[arg(long, default_value = "2021..2040")]
        years: YearRange,
        /// PRNG seed: the same options and seed give byte-identical files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Scenarios, comma-separated; one file each.
        #[arg(long, value_delimiter = ',', default_value = "ssp126,ssp245,ssp585")]
        scenarios: Vec<String>,
        /// Use the noleap calendar instead of the standard one.
        #[arg(long)]
        noleap: bool,
    },
    /// Inspect and manage the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Run every job once on tiny generated data (CI after building the image).
    Smoke {
        /// Database to use; default: a throw-away PostgreSQL started for the run
        /// (needs Debian's `postgresql` package).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Manage the regions the cache is built for.
    #[command(subcommand)]
    Regions(RegionsCommand),
    /// Manage the business sites site-risk-batch assesses.
    #[command(subcommand)]
    Sites(SitesCommand),
    /// Validate jobs.yaml: keys, cron expressions, layered deadlines,
    /// scheduler limits, binaries, resources, secrets; and the vulnerability
    /// curves: monotone, units matching each hazard's index, proxies
    /// labelled, every hazard × asset class covered.
    Check {
        /// The file to check.
        #[arg(long, default_value = "jobs.yaml")]
        file: PathBuf,
        /// The vulnerability curve file to check (what site-risk-batch
        /// --curves would read); default: the curves built into the binaries
        /// (data/vulnerability/curves.csv).
        #[arg(long)]
        curves: Option<PathBuf>,
    },
    /// Write scheduler manifests or alert rules from jobs.yaml.
    #[command(subcommand)]
    Render(RenderCommand),
    /// One line per job of jobs.yaml: ok, running, late, failing, stuck or
    /// never-run; last run, last success, next due, open dead letters, data
    /// age. Exits 0 when none is late, failing or stuck, 1 otherwise.
    Status {
        /// The jobs file: schedules, deadlines, freshness.
        #[arg(long, default_value = "jobs.yaml")]
        file: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// For tests: judge as if it were this RFC 3339 time (default: now).
        #[arg(long, hide = true, value_parser = ops::status::parse_now)]
        now: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Publish job metrics from the ledger.
    #[command(subcommand)]
    Metrics(MetricsCommand),
}

#[derive(Subcommand)]
enum MetricsCommand {
    /// Publish each job's metrics as the ledger knows them, for runs that
    /// could not push their own (killed, abandoned). Marks runs whose
    /// heartbeat stopped `abandoned` first.
    Push {
        /// Only this job (repeatable); default: every job in job_runs and --file.
        #[arg(long = "job", value_name = "NAME")]
        jobs: Vec<String>,
        /// jobs.yaml, for each job's schedule, timeout and memory limit
        /// (climate_job_info, climate_job_memory_limit_bytes). Default: none.
        #[arg(long)]
        file: Option<PathBuf>,
        /// A `running` row whose heartbeat is older than this belongs to a
        /// dead process (six of the default 5 s heartbeats).
        #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DUR")]
        stale_after: Duration,
        #[command(flatten)]
        metrics: MetricsArgs,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
}

#[derive(Subcommand)]
enum RenderCommand {
    /// One Kubernetes CronJob (batch/v1) per job.
    K8s {
        /// The container image, e.g. registry.example/climate-jobs:1.4.0.
        #[arg(long)]
        image: String,
        /// metadata.namespace of every CronJob (omitted when not given).
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        io: RenderIo,
    },
    /// One Azure Container Apps Job (`az containerapp job create --yaml`) per job.
    Aca {
        /// The container image, e.g. myregistry.azurecr.io/climate-jobs:1.4.0.
        #[arg(long)]
        image: String,
        /// Resource ID of the Container Apps environment.
        #[arg(long)]
        environment_id: String,
        /// Key Vault holding the secrets, https://NAME.vault.azure.net; each
        /// secret is read from <vault>/secrets/<secret>-<key>.
        #[arg(long)]
        key_vault: String,
        /// Resource ID of the user-assigned managed identity that reads the
        /// Key Vault secrets (and pulls the image from --registry).
        #[arg(long)]
        identity: String,
        /// Private registry server to pull the image from with --identity.
        #[arg(long)]
        registry: Option<String>,
        #[command(flatten)]
        io: RenderIo,
    },
    /// Prometheus alert rules (late, failed, stuck, dead letters growing,
    /// data stale) on the metrics every run pushes.
    PrometheusRules {
        /// URL of this README as your team reads it, e.g.
        /// https://git.example/climate-jobs/blob/main/README.md; each alert
        /// links to its section there (what it means, what to do).
        #[arg(long, value_name = "URL")]
        runbook_base: String,
        #[command(flatten)]
        io: RenderIo,
    },
}

#[derive(Args)]
struct RenderIo {
    /// The jobs file to render.
    #[arg(long, default_value = "jobs.yaml")]
    file: PathBuf,
    /// `-` for one multi-document stream on stdout, or a directory for one
    /// <job>.yaml per job.
    #[arg(long, default_value = "-")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// List letters, newest first.
    List {
        #[arg(long)]
        job: Option<String>,
        /// pending, running, resolved, dead, or all.
        #[arg(long, default_value = "all", value_parser = ["pending", "running", "resolved", "dead", "all"])]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Show one letter with its payload.
    Show {
        id: i64,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Put dead (or pending) letters back to pending, due now, attempts reset.
    Redrive {
        #[arg(required = true)]
        ids: Vec<i64>,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Delete resolved letters last updated before a date.
    Purge {
        /// YYYY-MM-DD (UTC midnight) or an RFC 3339 time.
        #[arg(long)]
        resolved_before: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
}

#[derive(Subcommand)]
enum RegionsCommand {
    /// Replace all regions with the rows of a `code,name,lat,lon` CSV file;
    /// bad rows are reported by line number and nothing is imported.
    Import {
        file: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
}

#[derive(Subcommand)]
enum SitesCommand {
    /// Replace all sites with the rows of a CSV file (columns: site_id,
    /// name, lat, lon, asset_value, currency, asset_class, structure_type,
    /// year_built, floors, optional distance_to_river_km,
    /// distance_to_coast_km; see README); every bad row is reported by line
    /// number and nothing is imported.
    Import {
        file: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
}

#[derive(Args)]
struct CanaryCommand {
    #[command(flatten)]
    args: CanaryArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate { database, log } => run_command(log.log_format, || async move {
            ops::migrate::run(&database).await
        }),
        Command::Canary(c) => harness::run(Canary {
            args: c.args,
            common: c.common,
        }),
        Command::Runs {
            job,
            limit,
            json,
            database,
            log,
        } => run_command(log.log_format, || async move {
            let q = ops::runs::RunsQuery {
                job: job.as_deref(),
                limit,
            };
            ops::runs::run(&database, &q, json).await
        }),
        Command::Datasets {
            json,
            database,
            log,
        } => run_command(log.log_format, || async move {
            ops::datasets::run(&database, json).await
        }),
        Command::DemoData {
            out,
            points,
            years,
            seed,
            scenarios,
            noleap,
        } => {
            let opts = DemoOptions {
                points,
                years: years.first..=years.last,
                seed,
                scenarios,
                calendar: if noleap {
                    DemoCalendar::Noleap
                } else {
                    DemoCalendar::Standard
                },
            };
            std::process::exit(ops::demo_data::run(&out, &opts).code())
        }
        Command::Dlq(DlqCommand::List {
            job,
            status,
            limit,
            json,
            database,
            log,
        }) => run_command(log.log_format, || async move {
            ops::dlq::list(
                &database,
                job.as_deref(),
                dead_letter::LetterStatus::parse(&status),
                limit,
                json,
            )
            .await
        }),
        Command::Dlq(DlqCommand::Show { id, database, log }) => {
            run_command(log.log_format, || async move {
                ops::dlq::show(&database, id).await
            })
        }
        Command::Dlq(DlqCommand::Redrive { ids, database, log }) => {
            run_command(log.log_format, || async move {
                ops::dlq::redrive(&database, &ids).await
            })
        }
        Command::Dlq(DlqCommand::Purge {
            resolved_before,
            database,
            log,
        }) => run_command(log.log_format, || async move {
            ops::dlq::purge(&database, &resolved_before).await
        }),
        Command::Regions(RegionsCommand::Import {
            file,
            database,
            log,
        }) => run_command(log.log_format, || async move {
            ops::regions::import(&database, &file).await
        }),
        Command::Sites(SitesCommand::Import {
            file,
            database,
            log,
        }) => run_command(log.log_format, || async move {
            ops::sites::import(&database, &file).await
        }),
        Command::Smoke { database_url } => match ops::smoke::run(database_url) {
            Ok(code) => std::process::exit(code.code()),
            Err(e) => {
                eprintln!("smoke: {e:#}");
                std::process::exit(1)
            }
        },
        Command::Report {
            out,
            days,
            jobs_file,
            database,
            log,
        } => run_command(log.log_format, || async move {
            let args = ops::report::ReportArgs {
                out: &out,
                days,
                jobs_file: jobs_file.as_deref(),
            };
            ops::report::run(&database, &args).await
        }),
        Command::Check { file, curves } => {
            let jobs = ops::check::run(&file);
            let curves = ops::curves::check(curves.as_deref());
            let worst = if jobs == ExitCode::Success {
                curves
            } else {
                jobs
            };
            std::process::exit(worst.code())
        }
        Command::Render(cmd) => std::process::exit(render(cmd).code()),
        Command::Status {
            file,
            json,
            now,
            database,
            log,
        } => {
            let jobs = match ops::render::load(&file) {
                Ok(jobs) => jobs,
                Err(code) => std::process::exit(code.code()),
            };
            run_command(log.log_format, || async move {
                ops::status::run(&database, &jobs, json, now).await
            })
        }
        Command::Metrics(MetricsCommand::Push {
            jobs,
            file,
            stale_after,
            metrics,
            database,
            log,
        }) => {
            let spec = match file.as_deref().map(ops::render::load).transpose() {
                Ok(spec) => spec,
                Err(code) => std::process::exit(code.code()),
            };
            run_command(log.log_format, || async move {
                let opts = ops::metrics_push::PushOptions {
                    jobs: &jobs,
                    file: spec.as_ref(),
                    stale_after,
                };
                ops::metrics_push::run(&database, &metrics, &opts).await
            })
        }
    }
}

fn render(cmd: RenderCommand) -> ExitCode {
    use climate_jobs::manifest::{aca, k8s, prometheus};
    let usage = |msg: String| {
        eprintln!("jobctl render: {msg}");
        ExitCode::Usage
    };
    match cmd {
        RenderCommand::K8s {
            image,
            namespace,
            io,
        } => {
            if image.trim().is_empty() {
                return usage("--image is empty".into());
            }
            if let Some(ns) = &namespace
                && let Err(e) = k8s::check_namespace(ns)
            {
                return usage(e);
            }
            let file = match ops::render::load(&io.file) {
                Ok(file) => file,
                Err(code) => return code,
            };
            let opts = k8s::K8sOptions { image, namespace };
            ops::render::write(&k8s::render(&file, &opts), &io.out)
        }
        RenderCommand::Aca {
            image,
            environment_id,
            key_vault,
            identity,
            registry,
            io,
        } => {
            if image.trim().is_empty() {
                return usage("--image is empty".into());
            }
            let opts = aca::AcaOptions {
                image,
                environment_id,
                key_vault,
                identity,
                registry,
            };
            if let Err(e) = opts.check() {
                return usage(e);
            }
            let file = match ops::render::load(&io.file) {
                Ok(file) => file,
                Err(code) => return code,
            };
            ops::render::write(&aca::render(&file, &opts), &io.out)
        }
        RenderCommand::PrometheusRules { runbook_base, io } => {
            let opts = prometheus::RulesOptions { runbook_base };
            if let Err(e) = opts.check() {
                return usage(e);
            }
            let file = match ops::render::load(&io.file) {
                Ok(file) => file,
                Err(code) => return code,
            };
            let doc = (
                prometheus::GROUP.to_string(),
                prometheus::render(&file, &opts),
            );
            ops::render::write(&[doc], &io.out)
        }
    }
}
