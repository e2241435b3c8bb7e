//! jobs.yaml → Azure Container Apps Jobs: the YAML `az containerapp job
//! create --name NAME --resource-group RG --yaml FILE` takes, one job per
//! document (`Microsoft.App/jobs`, api-version 2024-03-01; the fields
//! emitted are pinned by `deploy/schema/aca-job.schema.json`).
//!
//! * `triggerType: Schedule`, `scheduleTriggerConfig.cronExpression` (ACA
//!   evaluates cron in UTC only, as jobs.yaml does), `parallelism` and
//!   `replicaCompletionCount` = replicas.
//! * `replicaTimeout` = timeout + grace + 60 s (one attempt, see
//!   [`super::limits`]); `replicaRetryLimit` = retries. ACA has no
//!   concurrency policy: overlapping executions are normal, and the
//!   singleton advisory lock makes the second one exit 0 as `skipped`. ACA
//!   retries on every non-zero exit code; it cannot be told that 2, 3 and 65
//!   are final.
//! * Secrets: no value is ever rendered. Each secret is a Key Vault
//!   reference (`keyVaultUrl` = `<--key-vault>/secrets/<name>`) read with
//!   the user-assigned identity `--identity`, which the job also carries.
//!   The Key Vault secret must exist, with the name [`super::SecretRef::aca_name`].
//! * Resources: ACA's consumption plan runs only these CPU / memory pairs:
//!   0.25 vCPU / 0.5 GiB, 0.5 / 1, … 4 / 8 (steps of 0.25 vCPU, memory twice
//!   the CPU in GiB); [`check_resources`] holds jobs.yaml to them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{JobSpec, JobsFile};

pub const API_VERSION: &str = "2024-03-01";

const CPU_STEP_MILLIS: u64 = 250;
const CPU_MAX_MILLIS: u64 = 4000;
const GIB: u64 = 1 << 30;

#[derive(Debug, Clone)]
pub struct AcaOptions {
    pub image: String,
    pub environment_id: String,
    /// `https://<vault>.vault.azure.net`
    pub key_vault: String,
    /// Resource ID of a user-assigned managed identity that may read the
    /// Key Vault secrets (and pull from `registry`).
    pub identity: String,
    /// A private registry to pull the image from with that identity.
    pub registry: Option<String>,
}

/// Memory ACA pairs with `cpu_millis`: twice the vCPUs in GiB.
pub fn memory_for_cpu(cpu_millis: u64) -> u64 {
    cpu_millis * 2 * GIB / 1000
}

/// Whether a CPU / memory pair is one ACA's consumption plan runs.
pub fn check_resources(cpu_millis: u64, memory_bytes: u64) -> Result<(), String> {
    if cpu_millis == 0 || !cpu_millis.is_multiple_of(CPU_STEP_MILLIS) || cpu_millis > CPU_MAX_MILLIS
    {
        return Err(
            "Azure Container Apps runs 250m to 4 CPU in steps of 250m (0.25, 0.5, … 4)".into(),
        );
    }
    let want = memory_for_cpu(cpu_millis);
    if memory_bytes != want {
        return Err(format!(
            "Azure Container Apps pairs {} CPU with {} of memory (twice the CPU in Gi)",
            cpu_millis as f64 / 1000.0,
            memory_text(want)
        ));
    }
    Ok(())
}

/// `0.5Gi`, `1Gi`, `1.5Gi`: ACA's memory spelling (at most 2 decimals).
fn memory_text(bytes: u64) -> String {
    format!("{}Gi", bytes as f64 / GIB as f64)
}

/// `/subscriptions/S/resourceGroups/G/providers/<provider>/<kind>/NAME`
/// (segment names compared without case, as Azure does).
fn check_arm_id(flag: &str, id: &str, provider: &str, kind: &str) -> Result<(), String> {
    let parts: Vec<&str> = id.split('/').collect();
    let fixed = [
        (1, "subscriptions"),
        (3, "resourceGroups"),
        (5, "providers"),
        (6, provider),
        (7, kind),
    ];
    let ok = parts.len() == 9
        && parts[0].is_empty()
        && fixed
            .iter()
            .all(|(i, want)| parts[*i].eq_ignore_ascii_case(want))
        && [2, 4, 8].iter().all(|i| !parts[*i].is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} {id:?}: expected /subscriptions/ID/resourceGroups/GROUP/providers/{provider}/{kind}/NAME"
        ))
    }
}

impl AcaOptions {
    /// Checks the flags' shapes (not that the resources exist).
    pub fn check(&self) -> Result<(), String> {
        check_arm_id(
            "--environment-id",
            &self.environment_id,
            "Microsoft.App",
            "managedEnvironments",
        )?;
        check_arm_id(
            "--identity",
            &self.identity,
            "Microsoft.ManagedIdentity",
            "userAssignedIdentities",
        )?;
        if !self.key_vault.starts_with("https://")
            || self.key_vault.trim_end_matches('/').len() <= 8
        {
            return Err(format!(
                "--key-vault {:?}: expected https://NAME.vault.azure.net",
                self.key_vault
            ));
        }
        Ok(())
    }
}

/// One job's Container Apps Job.
pub fn job(job: &JobSpec, opts: &AcaOptions) -> Value {
    let vault = opts.key_vault.trim_end_matches('/');
    let mut env: Vec<Value> = job.plain_env_entries();
    env.extend(
        job.secrets
            .iter()
            .map(|(name, r)| json!({"name": name, "secretRef": r.aca_name()})),
    );
    let secrets: BTreeMap<String, Value> = job
        .secrets
        .values()
        .map(|r| {
            let name = r.aca_name();
            let entry = json!({
                "name": name,
                "keyVaultUrl": format!("{vault}/secrets/{name}"),
                "identity": opts.identity,
            });
            (name, entry)
        })
        .collect();
    let mut container = json!({
        "name": job.name,
        "image": opts.image,
        "command": [job.binary],
        "env": env,
        "resources": {
            "cpu": job.cpu_millis as f64 / 1000.0,
            "memory": memory_text(job.memory_bytes),
        },
    });
    if !job.args.is_empty() {
        container["args"] = json!(job.args);
    }
    let mut template = json!({"containers": [container]});
    if !job.volumes.is_empty() {
        template["containers"][0]["volumeMounts"] = json!(
            job.volumes
                .iter()
                .map(|(name, vol)| json!({"volumeName": name, "mountPath": vol.mount_path}))
                .collect::<Vec<_>>()
        );
        template["volumes"] = json!(job
            .volumes
            .iter()
            .map(|(name, vol)| json!({"name": name, "storageType": "AzureFile", "storageName": vol.aca_storage}))
            .collect::<Vec<_>>());
    }
    let mut configuration = json!({
        "triggerType": "Schedule",
        "replicaTimeout": job.attempt_secs(),
        "replicaRetryLimit": job.retries,
        "scheduleTriggerConfig": {
            "cronExpression": job.schedule,
            "parallelism": job.replicas,
            "replicaCompletionCount": job.replicas,
        },
        "secrets": secrets.into_values().collect::<Vec<_>>(),
    });
    if let Some(server) = &opts.registry {
        configuration["registries"] = json!([{"server": server, "identity": opts.identity}]);
    }
    let mut identities = Map::new();
    identities.insert(opts.identity.clone(), json!({}));
    json!({
        "name": job.name,
        "type": "Microsoft.App/jobs",
        "identity": {"type": "UserAssigned", "userAssignedIdentities": identities},
        "properties": {
            "environmentId": opts.environment_id,
            "configuration": configuration,
            "template": template,
        },
    })
}

/// Every job's Container Apps Job, by job name (sorted).
pub fn render(file: &JobsFile, opts: &AcaOptions) -> Vec<(String, Value)> {
    super::by_name(file)
        .into_values()
        .map(|j| (j.name.clone(), job(j, opts)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aca_sizes() {
        assert!(check_resources(250, GIB / 2).is_ok());
        assert!(check_resources(1500, 3 * GIB).is_ok());
        assert!(check_resources(4000, 8 * GIB).is_ok());
        assert!(check_resources(500, GIB / 2).is_err());
        assert!(check_resources(300, 600 << 20).is_err());
        assert!(check_resources(4250, 17 * GIB / 2).is_err());
        assert_eq!(memory_text(3 * GIB / 2), "1.5Gi");
        assert_eq!(memory_text(GIB), "1Gi");
    }
}
