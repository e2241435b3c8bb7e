//! `jobctl render k8s|aca` on the repository's jobs.yaml: pinned by insta
//! snapshots (tests/it/snapshots; `cargo insta review` or INSTA_UPDATE=always
//! after an intended change), validated by `kubernetes-validate --strict` and by the JSON
//! schema in deploy/schema/, and checked for the layering the run contract
//! promises. The tools come from .tools/venv (scripts/ensure-deps.sh).

use crate::deploy_support;

use std::path::Path;
use std::process::Command;

use climate_jobs::manifest::{self, JobSpec};
use deploy_support::{Done, jobctl, repo, run, scratch, tool};
use serde_json::Value;

const K8S: &[&str] = &[
    "render",
    "k8s",
    "--image",
    "registry.example/climate-jobs:0.1.0",
    "--namespace",
    "climate-jobs",
    "--file",
    "jobs.yaml",
];

const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/climate";

fn aca_args() -> Vec<String> {
    [
        "render",
        "aca",
        "--image",
        "climateregistry.azurecr.io/climate-jobs:0.1.0",
        "--environment-id",
        &format!("{SUB}/providers/Microsoft.App/managedEnvironments/climate-env"),
        "--key-vault",
        "https://climate-kv.vault.azure.net",
        "--identity",
        &format!("{SUB}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/climate-jobs"),
        "--registry",
        "climateregistry.azurecr.io",
        "--file",
        "jobs.yaml",
    ]
    .map(String::from)
    .to_vec()
}

fn render_k8s() -> String {
    let done = jobctl(K8S);
    assert_eq!(done.code, 0, "{}", done.all());
    done.stdout
}

fn render_aca() -> String {
    let args = aca_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = jobctl(&args);
    assert_eq!(done.code, 0, "{}", done.all());
    done.stdout
}

fn repo_jobs() -> Vec<JobSpec> {
    let text = std::fs::read_to_string(repo().join("jobs.yaml")).unwrap();
    let mut jobs = manifest::parse(&text).unwrap().jobs;
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    jobs
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("rendered YAML: {e}\n{yaml}"))
}

#[test]
fn k8s_render_matches_snapshot() {
    insta::assert_snapshot!("k8s", render_k8s());
}

#[test]
fn aca_render_matches_snapshot() {
    insta::assert_snapshot!("aca", render_aca());
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(render_k8s(), render_k8s());
    assert_eq!(render_aca(), render_aca());
}

fn kubernetes_validate(path: &Path) -> Done {
    run(Command::new(tool("kubernetes-validate"))
        .arg("--strict")
        .arg(path))
}

#[test]
fn rendered_cronjobs_pass_kubernetes_validate_strict() {
    let dir = scratch("kv");
    let path = dir.join("cronjobs.yaml");
    std::fs::write(&path, render_k8s()).unwrap();
    let done = kubernetes_validate(&path);
    assert_eq!(done.code, 0, "{}", done.all());
    for job in repo_jobs() {
        assert!(
            done.stdout
                .contains(&format!("passed for resource cronjob/{} ", job.name)),
            "no pass line for {}: {}",
            job.name,
            done.all()
        );
    }
}

#[test]
fn kubernetes_validate_strict_rejects_an_unknown_field() {
    // The control: the same rendering with one misspelt field must fail,
    // or the test above proves nothing.
    let dir = scratch("kv-bad");
    let path = dir.join("cronjobs.yaml");
    let bad = render_k8s().replacen(
        "  concurrencyPolicy: Forbid\n",
        "  concurrencyPolicy: Forbid\n  concurencyPolicy: Forbid\n",
        1,
    );
    std::fs::write(&path, bad).unwrap();
    let done = kubernetes_validate(&path);
    assert_ne!(done.code, 0, "{}", done.all());
    assert!(done.all().contains("concurencyPolicy"), "{}", done.all());
}

fn validate_aca(path: &Path) -> Done {
    run(Command::new(tool("python"))
        .arg(repo().join("tools/deploy/validate_aca.py"))
        .arg(repo().join("deploy/schema/aca-job.schema.json"))
        .arg(path))
}

#[test]
fn rendered_aca_jobs_match_the_json_schema() {
    let dir = scratch("aca-schema");
    let path = dir.join("jobs.yaml");
    std::fs::write(&path, render_aca()).unwrap();
    let done = validate_aca(&path);
    assert_eq!(done.code, 0, "{}", done.all());
    let n = repo_jobs().len();
    assert!(
        done.stdout
            .contains(&format!("{n} document(s) checked, 0 problem(s)")),
        "{}",
        done.all()
    );
}

#[test]
fn the_aca_schema_rejects_a_secret_value_and_unknown_fields() {
    let dir = scratch("aca-schema-bad");
    let good = render_aca();
    for (what, bad) in [
        (
            "a secret value",
            good.replacen(
                "      name: climate-jobs-database-url\n",
                "      name: climate-jobs-database-url\n      value: postgres://u:p@h/db\n",
                1,
            ),
        ),
        (
            "an unknown field",
            good.replacen(
                "    triggerType: Schedule\n",
                "    triggerType: Schedule\n    tiggerType: x\n",
                1,
            ),
        ),
        (
            "a cpu ACA does not run",
            good.replacen("        cpu: 0.5\n", "        cpu: 0.3\n", 1),
        ),
    ] {
        assert_ne!(bad, good, "the edit for {what} matched nothing");
        let path = dir.join("jobs.yaml");
        std::fs::write(&path, bad).unwrap();
        let done = validate_aca(&path);
        assert_eq!(done.code, 1, "{what} passed the schema: {}", done.all());
    }
}

fn env_value<'a>(env: &'a Value, name: &str) -> Option<&'a Value> {
    env.as_array()?.iter().find(|e| e["name"] == name)
}

#[test]
fn cronjob_limits_are_layered_above_each_jobs_deadline() {
    let docs = docs(&render_k8s());
    let jobs = repo_jobs();
    assert_eq!(docs.len(), jobs.len());
    assert!(jobs.iter().any(|j| j.replicas > 1) && jobs.iter().any(|j| j.replicas == 1));
    for (doc, job) in docs.iter().zip(&jobs) {
        let n = &job.name;
        assert_eq!(doc["metadata"]["name"], *n);
        let spec = &doc["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Forbid", "{n}");
        assert_eq!(spec["timeZone"], "Etc/UTC", "{n}");
        assert_eq!(spec["schedule"], job.schedule, "{n}");
        assert!(
            spec["startingDeadlineSeconds"].as_u64().unwrap() >= 60,
            "{n}"
        );
        let js = &spec["jobTemplate"]["spec"];
        let own = job.timeout.as_secs() + job.grace.as_secs();
        let active = js["activeDeadlineSeconds"].as_u64().unwrap();
        assert!(
            active > (own + 60) * (u64::from(job.retries) + 1),
            "{n}: {active}"
        );
        assert!(active <= 86400, "{n}");
        assert_eq!(js["backoffLimit"], job.retries, "{n}");
        let rules = js["podFailurePolicy"]["rules"].as_array().unwrap();
        assert_eq!(rules[0]["action"], "Ignore");
        assert_eq!(rules[0]["onPodConditions"][0]["type"], "DisruptionTarget");
        assert_eq!(rules[1]["action"], "FailJob");
        assert_eq!(
            rules[1]["onExitCodes"]["values"],
            serde_json::json!([2, 3, 65])
        );
        assert_eq!(rules[1]["onExitCodes"]["containerName"], *n);
        if job.replicas > 1 {
            assert_eq!(js["completionMode"], "Indexed", "{n}");
            assert_eq!(js["parallelism"], job.replicas, "{n}");
            assert_eq!(js["completions"], job.replicas, "{n}");
        } else {
            assert!(js.get("completionMode").is_none(), "{n}");
        }
        let pod = &js["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        let tgps = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(tgps > job.grace.as_secs() && tgps <= 30, "{n}: {tgps}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["command"][0], job.binary, "{n}");
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(c["resources"]["requests"]["cpu"], job.cpu);
        assert_eq!(c["resources"]["limits"]["memory"], job.memory);
        let env = &c["env"];
        let db = env_value(env, "DATABASE_URL").unwrap();
        assert!(
            db.get("value").is_none(),
            "{n}: DATABASE_URL has a literal value"
        );
        assert_eq!(db["valueFrom"]["secretKeyRef"]["name"], "climate-jobs");
        let timeout = env_value(env, "CLIMATE_JOBS_TIMEOUT").unwrap()["value"]
            .as_str()
            .unwrap();
        assert_eq!(
            climate_jobs::harness::args::parse_duration(timeout),
            Ok(job.timeout),
            "{n}"
        );
        assert_eq!(
            env_value(env, "CLIMATE_JOBS_LOG_FORMAT").unwrap()["value"],
            "json"
        );
    }
}

#[test]
fn aca_jobs_carry_no_secret_values_and_layered_timeouts() {
    let docs = docs(&render_aca());
    let jobs = repo_jobs();
    assert_eq!(docs.len(), jobs.len());
    for (doc, job) in docs.iter().zip(&jobs) {
        let n = &job.name;
        let conf = &doc["properties"]["configuration"];
        assert_eq!(conf["triggerType"], "Schedule");
        let timeout = conf["replicaTimeout"].as_u64().unwrap();
        assert!(timeout > job.timeout.as_secs() + job.grace.as_secs(), "{n}");
        assert_eq!(conf["replicaRetryLimit"], job.retries, "{n}");
        let trig = &conf["scheduleTriggerConfig"];
        assert_eq!(trig["cronExpression"], job.schedule);
        assert_eq!(trig["parallelism"], job.replicas);
        assert_eq!(trig["replicaCompletionCount"], job.replicas);
        for s in conf["secrets"].as_array().unwrap() {
            assert!(s.get("value").is_none(), "{n}: a secret value was rendered");
            assert!(
                s["keyVaultUrl"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://climate-kv.")
            );
        }
        let c = &doc["properties"]["template"]["containers"][0];
        assert_eq!(c["command"][0], job.binary);
        let db = env_value(&c["env"], "DATABASE_URL").unwrap();
        assert_eq!(db["secretRef"], "climate-jobs-database-url");
        assert!(db.get("value").is_none());
    }
}

#[test]
fn render_to_a_directory_writes_one_file_per_job() {
    let dir = scratch("out-dir");
    let mut args = aca_args();
    args.extend(["--out".to_string(), dir.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = jobctl(&args);
    assert_eq!(done.code, 0, "{}", done.all());
    assert!(done.stdout.is_empty(), "{}", done.all());
    for job in repo_jobs() {
        let text = std::fs::read_to_string(dir.join(format!("{}.yaml", job.name))).unwrap();
        let d = docs(&text);
        assert_eq!(d.len(), 1, "{}", job.name);
        assert_eq!(d[0]["name"], job.name);
    }
}

#[test]
fn render_refuses_an_invalid_jobs_file_with_exit_2() {
    let dir = scratch("invalid");
    let path = dir.join("jobs.yaml");
    let text = std::fs::read_to_string(repo().join("jobs.yaml"))
        .unwrap()
        .replacen("    replicas: 3\n", "    replicas: 0\n", 1);
    std::fs::write(&path, text).unwrap();
    let file = path.display().to_string();
    let done = jobctl(&["render", "k8s", "--image", "x:1", "--file", &file]);
    assert_eq!(done.code, 2, "{}", done.all());
    assert!(done.stdout.is_empty(), "{}", done.all());
    assert!(
        done.stderr
            .contains("job `hazard-timeseries-batch`, field `replicas`"),
        "{}",
        done.stderr
    );
}

#[test]
fn render_aca_refuses_malformed_resource_ids_with_exit_2() {
    let mut args = aca_args();
    let i = args.iter().position(|a| a == "--environment-id").unwrap();
    args[i + 1] = "climate-env".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = jobctl(&args);
    assert_eq!(done.code, 2, "{}", done.all());
    assert!(done.stderr.contains("--environment-id"), "{}", done.stderr);
}
