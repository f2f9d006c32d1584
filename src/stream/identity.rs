//! The stable deployment id `vercel-{buildId}-{shortULID}`: made once per build, reused by every
//! retry, restart and instance (plan: `vercel:deployment_id:{buildId}`, 24 h TTL).

use std::time::Duration;

use crate::store::StateStore;

pub const STATE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

pub fn resume_key(vercel_id: &str) -> String {
    format!("vercel:resume:{vercel_id}")
}

pub fn deployment_id_key(build_id: &str) -> String {
    format!("vercel:deployment_id:{build_id}")
}

/// A fresh id: `vercel-{buildId}-` plus the random tail of a ULID.
pub fn new_deployment_id(build_id: &str) -> String {
    let ulid = ulid::Ulid::new().to_string();
    format!("vercel-{build_id}-{}", &ulid[ulid.len() - 10..])
}

/// The build's stable id: the stored one, or a new one stored atomically (first writer wins).
/// When the store fails, a fresh id still lets the follower work.
pub async fn stable_deployment_id(store: &StateStore, build_id: &str) -> String {
    let candidate = new_deployment_id(build_id);
    match store
        .put_if_absent(&deployment_id_key(build_id), &candidate, STATE_TTL)
        .await
    {
        Ok(stored) => stored,
        Err(err) => {
            tracing::warn!(error = %err, "could not store the deployment id; using a fresh one");
            candidate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_plan_shape() {
        let id = new_deployment_id("dpl_abc");
        assert!(id.starts_with("vercel-dpl_abc-"));
        assert_eq!(id.len(), "vercel-dpl_abc-".len() + 10);
    }

    #[tokio::test]
    async fn the_same_build_keeps_its_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
        let first = stable_deployment_id(&store, "dpl_abc").await;
        let again = stable_deployment_id(&store, "dpl_abc").await;
        let other = stable_deployment_id(&store, "dpl_xyz").await;
        assert_eq!(first, again);
        assert_ne!(first, other);
    }
}
