//! jobs.yaml → Kubernetes CronJobs (`batch/v1`), one per job.
//!
//! What each setting is for:
//!
//! * `concurrencyPolicy: Forbid` — a schedule that fires while the last run
//!   still runs is skipped (the advisory lock would skip it anyway).
//! * `startingDeadlineSeconds` — a CronJob that missed more than 100
//!   schedules never starts again without it ([`limits::starting_deadline_secs`]).
//! * `timeZone: Etc/UTC` — schedules are UTC, as on Azure Container Apps.
//! * `activeDeadlineSeconds` — above every attempt's own deadline + grace
//!   ([`limits::active_deadline_secs`]); the process ends itself first.
//! * `backoffLimit` = `retries`, and a `podFailurePolicy` from the exit-code
//!   table: 2 (usage), 3 (partial: the DLQ retries) and 65 (bad input) end
//!   the Job at once; a pod disrupted by the cluster (eviction, preemption,
//!   node drain: condition `DisruptionTarget`) is retried without counting;
//!   every other failure (1, 69, 124, 130, 143, OOM) counts toward
//!   `backoffLimit`.
//! * `terminationGracePeriodSeconds` = grace + 5 s: the job's grace plus a
//!   moment to record the run.
//! * Non-root, read-only root filesystem (an `emptyDir` on /tmp), no
//!   capabilities, no privilege escalation, seccomp `RuntimeDefault`, no
//!   service-account token.
//! * `replicas > 1` → `completionMode: Indexed` with `parallelism` =
//!   `completions` = replicas: the pods of one run get
//!   `JOB_COMPLETION_INDEX` 0…N-1 and share its chunks.

use serde_json::{Map, Value, json};

use super::{JobSpec, JobsFile, limits};
use crate::harness::ExitCode;

/// The image's non-root user (Dockerfile: `USER 10001`).
pub const RUN_AS_USER: u32 = 10001;

/// Exit codes after which retrying cannot help (see harness::outcome):
/// usage, partial (the DLQ retries its tasks) and bad input.
pub const FINAL_EXIT_CODES: [ExitCode; 3] =
    [ExitCode::Usage, ExitCode::Partial, ExitCode::BadInput];

#[derive(Debug, Clone)]
pub struct K8sOptions {
    pub image: String,
    pub namespace: Option<String>,
}

fn labels(job: &JobSpec) -> Value {
    json!({
        "app.kubernetes.io/name": "climate-jobs",
        "app.kubernetes.io/component": job.name,
        "app.kubernetes.io/managed-by": "jobctl",
    })
}

fn env(job: &JobSpec) -> Vec<Value> {
    let mut env: Vec<Value> = job.plain_env_entries();
    env.extend(job.secrets.iter().map(|(name, r)| {
        json!({
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": r.secret, "key": r.key}},
        })
    }));
    if job.replicas > 1 {
        // The pods of one Job are replicas of one execution: the Job's name
        // (a label Kubernetes puts on each pod) identifies it, so they join
        // one run and share its chunks (`--execution`).
        env.push(json!({
            "name": "CLIMATE_JOBS_EXECUTION",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
        }));
    }
    env
}

/// The writable scratch /tmp (the root filesystem is read-only) and the
/// job's read-only data volumes.
fn volumes(job: &JobSpec) -> Vec<Value> {
    let mut v = vec![json!({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}})];
    v.extend(job.volumes.iter().map(|(name, vol)| {
        json!({"name": name, "persistentVolumeClaim": {"claimName": vol.claim, "readOnly": true}})
    }));
    v
}

fn volume_mounts(job: &JobSpec) -> Vec<Value> {
    let mut v = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    v.extend(
        job.volumes.iter().map(
            |(name, vol)| json!({"name": name, "mountPath": vol.mount_path, "readOnly": true}),
        ),
    );
    v
}

/// One job's CronJob.
pub fn cronjob(job: &JobSpec, opts: &K8sOptions) -> Value {
    let mut container = json!({
        "name": job.name,
        "image": opts.image,
        "command": [job.binary],
        "env": env(job),
        "resources": {
            "requests": {"cpu": job.cpu, "memory": job.memory},
            "limits": {"cpu": job.cpu, "memory": job.memory},
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": volume_mounts(job),
    });
    if !job.args.is_empty() {
        container["args"] = json!(job.args);
    }
    let pod_spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": limits::termination_grace_secs(job.grace),
        "automountServiceAccountToken": false,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes(job),
    });
    let mut job_spec = json!({
        "activeDeadlineSeconds": job.active_deadline_secs(),
        "backoffLimit": job.retries,
        "ttlSecondsAfterFinished": limits::TTL_AFTER_FINISHED_SECS,
        "podFailurePolicy": {"rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": job.name,
                    "operator": "In",
                    "values": FINAL_EXIT_CODES.map(ExitCode::code),
                },
            },
        ]},
        "template": {"metadata": {"labels": labels(job)}, "spec": pod_spec},
    });
    if job.replicas > 1 {
        job_spec["completionMode"] = json!("Indexed");
        job_spec["parallelism"] = json!(job.replicas);
        job_spec["completions"] = json!(job.replicas);
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(job.name));
    if let Some(ns) = &opts.namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    metadata.insert("labels".into(), labels(job));
    if let Some(d) = &job.description {
        metadata.insert("annotations".into(), json!({"climate-jobs/description": d}));
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata,
        "spec": {
            "schedule": job.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": limits::starting_deadline_secs(&job.schedule),
            "successfulJobsHistoryLimit": limits::SUCCESSFUL_JOBS_HISTORY,
            "failedJobsHistoryLimit": limits::FAILED_JOBS_HISTORY,
            "jobTemplate": {
                "metadata": {"labels": labels(job)},
                "spec": job_spec,
            },
        },
    })
}

/// Every job's CronJob, by job name (sorted).
pub fn render(file: &JobsFile, opts: &K8sOptions) -> Vec<(String, Value)> {
    super::by_name(file)
        .into_values()
        .map(|job| (job.name.clone(), cronjob(job, opts)))
        .collect()
}

/// A namespace must be a DNS label.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--namespace {ns:?}: a namespace is 1–63 characters of a-z, 0-9 and '-'"
        ))
    }
}
