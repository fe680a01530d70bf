//! A tier's patch: applied only where the component allows, at most once
//! per cycle, recorded by path, size and digest.

use super::*;

/// Applies a tier's patch if the component's `patch` settings allow it,
/// at most once per cycle. Rows carry paths, sizes and digests, never content.
pub(super) async fn apply_patch(
    ctx: &CycleContext,
    record: &mut CycleRecord,
    tier: &str,
    patch: &Value,
    started: u64,
) {
    let digest = patches::digest(patch);
    let files = patches::describe(patch);
    let rejected = |reason: String| esc::PatchRejected {
        component: ctx.component.name.clone(),
        tier: tier.to_owned(),
        started_seq: started,
        digest: digest.clone(),
        files: files.clone(),
        reason,
    };
    if record.applied_patches.contains(&digest) {
        let _ = emit(
            ctx,
            record,
            &rejected("this patch was already applied in this cycle".to_owned()),
        )
        .await;
        patch_timeline(
            ctx,
            record,
            tier,
            started,
            "rejected",
            format!("patch from {tier} refused: already applied in this cycle"),
        );
        return;
    }
    let state_dir = ctx.state_dir.clone();
    let component = ctx.component.name.clone();
    let settings = ctx.component.patch.clone();
    let (tier_name, body) = (tier.to_owned(), patch.clone());
    let result = tokio::task::spawn_blocking(move || {
        let policy = PatchPolicy::new(&settings)?;
        PatchHistory::open(&state_dir)?.apply_patch(&component, &tier_name, &body, &policy)
    })
    .await
    .unwrap_or_else(|error| {
        Err(PatchError::Io {
            path: ctx.state_dir.clone(),
            source: std::io::Error::other(error.to_string()),
        })
    });
    match result {
        Ok(entry) => {
            record.applied_patches.insert(digest.clone());
            record.history.record(
                HistoryKind::Note,
                tier,
                0,
                format!("patch from {tier} applied to {} file(s)", entry.files.len()),
                json!({ "digest": digest }),
            );
            let _ = emit(
                ctx,
                record,
                &esc::PatchApplied {
                    component: ctx.component.name.clone(),
                    tier: tier.to_owned(),
                    applied: true,
                    started_seq: started,
                    entry: Some(entry.id),
                    digest: digest.clone(),
                    files: serde_json::to_value(&entry.files).unwrap_or_default(),
                    error: None,
                },
            )
            .await;
            patch_timeline(
                ctx,
                record,
                tier,
                started,
                "applied",
                format!("patch from {tier} applied"),
            );
        }
        Err(error @ (PatchError::Refused(_) | PatchError::Invalid(_))) => {
            record.history.record(
                HistoryKind::Rejection,
                tier,
                0,
                format!("Warden did not apply the patch from {tier}: {error}"),
                json!({ "digest": digest }),
            );
            let _ = emit(ctx, record, &rejected(error.to_string())).await;
            patch_timeline(
                ctx,
                record,
                tier,
                started,
                "rejected",
                format!("patch from {tier} refused: {error}"),
            );
        }
        Err(error) => {
            let _ = emit(
                ctx,
                record,
                &esc::PatchApplied {
                    component: ctx.component.name.clone(),
                    tier: tier.to_owned(),
                    applied: false,
                    started_seq: started,
                    entry: None,
                    digest: digest.clone(),
                    files: files.clone(),
                    error: Some(error.to_string()),
                },
            )
            .await;
            patch_timeline(
                ctx,
                record,
                tier,
                started,
                "failed",
                format!("patch from {tier} failed: {error}"),
            );
        }
    }
}

/// The incident timeline's entry for a patch step, with its real outcome.
pub(super) fn patch_timeline(
    ctx: &CycleContext,
    record: &CycleRecord,
    tier: &str,
    started: u64,
    outcome: &str,
    text: String,
) {
    ctx.timeline(
        record,
        "patch",
        text,
        json!({ "tier": tier, "outcome": outcome, "started_seq": started }),
    );
}
