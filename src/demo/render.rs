//! JSON rendering: build events (flat and wrapped shapes) and deployment objects.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde_json::{json, Value};

use crate::demo::model::ReadyState;
use crate::demo::state::{SimDeployment, TEAM_ID, USERNAME, USER_EMAIL, USER_ID};

#[derive(Serialize)]
struct Info<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    entrypoint: &'static str,
}

/// The current (flat) event shape; field order as in the real example.
#[derive(Serialize)]
struct FlatEvent<'a> {
    created: i64,
    date: i64,
    #[serde(rename = "deploymentId")]
    deployment_id: &'a str,
    id: &'a str,
    text: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    serial: &'a str,
    info: Info<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a str>,
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "deploymentId")]
    deployment_id: &'a str,
    info: Info<'a>,
    text: &'a str,
    id: &'a str,
    date: i64,
    serial: &'a str,
}

/// The older shape: `{"type","created","payload":{...}}`.
#[derive(Serialize)]
struct WrappedEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    created: i64,
    payload: Payload<'a>,
}

/// `id`/`serial` of an event: 13-digit ms, an 8-digit per-deployment salt, a 7-digit sequence
/// number; equal-length decimal strings that sort like (created, index).
pub(crate) fn serial(buf: &mut String, created: i64, salt: u32, index: usize) {
    buf.clear();
    let _ = write!(buf, "{created:013}{salt:08}{index:07}");
}

/// Appends event `index` of `dep` as one NDJSON line (`JSON + "\n"`).
pub(crate) fn write_event_line(
    dep: &SimDeployment,
    index: usize,
    scratch: &mut String,
    out: &mut BytesMut,
) {
    let created = dep.events.created[index];
    write_event_line_with(
        dep,
        created,
        index,
        dep.events.kind(index),
        dep.events.text(index),
        dep.events.level(index),
        scratch,
        out,
    );
}

#[allow(clippy::too_many_arguments)]
fn write_event_line_with(
    dep: &SimDeployment,
    created: i64,
    index: usize,
    kind: &str,
    text: &str,
    level: Option<&str>,
    scratch: &mut String,
    out: &mut BytesMut,
) {
    serial(scratch, created, dep.serial_salt, index);
    let info = Info {
        kind: "build",
        name: &dep.build_name,
        entrypoint: ".",
    };
    let mut w = out.writer();
    let res = if dep.wrapped_shape {
        serde_json::to_writer(
            &mut w,
            &WrappedEvent {
                kind,
                created,
                payload: Payload {
                    deployment_id: &dep.id,
                    info,
                    text,
                    id: scratch,
                    date: created,
                    serial: scratch,
                },
            },
        )
    } else {
        serde_json::to_writer(
            &mut w,
            &FlatEvent {
                created,
                date: created,
                deployment_id: &dep.id,
                id: scratch,
                text,
                kind,
                serial: scratch,
                info,
                level,
            },
        )
    };
    debug_assert!(res.is_ok(), "serializing to memory cannot fail");
    w.into_inner().put_u8(b'\n');
}

/// The line of event `index` alone.
pub(crate) fn event_line(dep: &SimDeployment, index: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(256 + dep.events.text(index).len());
    write_event_line(dep, index, &mut String::new(), &mut out);
    out
}

/// When event `index` was created (the build's start when it has not been).
fn created_at(dep: &SimDeployment, index: usize) -> i64 {
    dep.events
        .created
        .get(index)
        .copied()
        .unwrap_or(dep.building_at)
}

/// A valid event line of exactly `bytes` bytes (without its `\n`, at least the skeleton's size),
/// stamped like event `index`, with a sequence number no real event uses.
pub(crate) fn oversized_line(dep: &SimDeployment, index: usize, bytes: usize) -> BytesMut {
    let created = created_at(dep, index);
    let fake_index = 9_999_999;
    let mut skeleton = BytesMut::new();
    let mut scratch = String::new();
    write_event_line_with(
        dep,
        created,
        fake_index,
        "stdout",
        "",
        None,
        &mut scratch,
        &mut skeleton,
    );
    let pad = bytes.saturating_sub(skeleton.len() - 1);
    let text = "x".repeat(pad);
    let mut out = BytesMut::with_capacity(skeleton.len() + pad);
    write_event_line_with(
        dep,
        created,
        fake_index,
        "stdout",
        &text,
        None,
        &mut scratch,
        &mut out,
    );
    out
}

/// Two bad lines: truncated JSON (valid UTF-8), then a line with invalid UTF-8 bytes.
/// A valid event line whose text holds a lone surrogate escape (see
/// `Fault::LoneSurrogateBefore`).
pub(crate) fn lone_surrogate_line(dep: &SimDeployment, index: usize) -> Vec<u8> {
    let created = created_at(dep, index);
    format!(
        "{{\"created\":{created},\"date\":{created},\"deploymentId\":\"{}\",\"id\":\"lone-{index}\",\"type\":\"stdout\",\"text\":\"half \\ud800 a pair\"}}\n",
        dep.id
    )
    .into_bytes()
}

pub(crate) fn malformed_lines(dep: &SimDeployment, index: usize) -> Vec<u8> {
    let created = created_at(dep, index);
    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "{{\"created\":{created},\"date\":{created},\"deploymentId\":\"{}\",\"text\":\"half an obj\n",
            dep.id
        )
        .as_bytes(),
    );
    out.extend_from_slice(
        format!(
            "{{\"created\":{created},\"date\":{created},\"deploymentId\":\"{}\",\"type\":\"stdout\",\"text\":\"bad ",
            dep.id
        )
        .as_bytes(),
    );
    out.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]);
    out.extend_from_slice(b" bytes\"}\n");
    out
}

/// Where to cut a line for `DropMidLine`: right after the first byte of the multi-byte character
/// nearest to the middle, or at the middle when the line is ASCII.
pub(crate) fn mid_line_cut(line: &[u8]) -> usize {
    let mid = line.len() / 2;
    let mut best: Option<usize> = None;
    for (i, &b) in line.iter().enumerate() {
        // A UTF-8 lead byte of a multi-byte sequence.
        if b >= 0xC0 {
            let better = match best {
                None => true,
                Some(j) => i.abs_diff(mid) < j.abs_diff(mid),
            };
            if better {
                best = Some(i);
            }
        }
    }
    match best {
        Some(i) => i + 1,
        None => mid.max(1),
    }
}

fn opt_ms(v: Option<i64>) -> Value {
    v.map(Value::from).unwrap_or(Value::Null)
}

fn meta(dep: &SimDeployment) -> Value {
    let mut meta = json!({
        "githubCommitAuthorName": "Demo User",
        "githubCommitAuthorLogin": USERNAME,
        "githubCommitMessage": dep.commit_message,
        "githubCommitOrg": "shiplog-demo",
        "githubCommitRef": dep.branch,
        "githubCommitRepo": dep.project,
        "githubCommitRepoId": "742184503",
        "githubCommitSha": dep.commit_sha,
        "githubDeployment": "1",
        "githubOrg": "shiplog-demo",
        "githubRepo": dep.project,
        "githubRepoOwnerType": "Organization",
        "githubRepoVisibility": "private",
    });
    for (key, value) in &dep.meta {
        meta[key] = json!(value);
    }
    meta
}

/// A project's `targets.production`: the deployment production points at.
pub(crate) fn target_deployment(dep: &SimDeployment) -> Value {
    json!({
        "id": dep.id,
        "url": dep.url,
        "readyState": dep.progress().state,
        "createdAt": dep.created_at,
        "target": dep.target,
        "meta": meta(dep),
    })
}

fn creator() -> Value {
    json!({ "uid": USER_ID, "username": USERNAME, "email": USER_EMAIL })
}

/// An item of `GET /v6/deployments`.
pub(crate) fn list_item(dep: &SimDeployment) -> Value {
    let p = dep.progress();
    let mut v = json!({
        "uid": dep.id,
        "name": dep.project,
        "projectId": dep.project_id,
        "url": dep.url,
        "created": dep.created_at,
        "createdAt": dep.created_at,
        "buildingAt": dep.building_at,
        "source": "git",
        "state": p.state,
        "readyState": p.state,
        "type": "LAMBDAS",
        "creator": creator(),
        "inspectorUrl": dep.inspector_url(),
        "meta": meta(dep),
        "target": dep.target,
        "aliasError": null,
        "aliasAssigned": if p.state == ReadyState::Ready { opt_ms(p.finished_at) } else { Value::Null },
        "isRollbackCandidate": p.state == ReadyState::Ready && dep.target.as_deref() == Some("production"),
        "projectSettings": { "framework": "nextjs" },
    });
    if p.state == ReadyState::Ready {
        v["ready"] = opt_ms(p.finished_at);
        v["readySubstate"] = json!("PROMOTED");
    }
    if p.state == ReadyState::Error {
        v["errorCode"] = json!("BUILD_FAILED");
        v["errorMessage"] = json!("The build failed. Check the build logs for details.");
    }
    v
}

/// `GET /v13/deployments/{idOrUrl}` (also the body of a successful cancel).
pub(crate) fn full_deployment(dep: &SimDeployment) -> Value {
    let p = dep.progress();
    let mut v = json!({
        "id": dep.id,
        "name": dep.project,
        "url": dep.url,
        "status": p.state,
        "readyState": p.state,
        "type": "LAMBDAS",
        "version": 2,
        "createdAt": dep.created_at,
        "buildingAt": dep.building_at,
        "bootedAt": dep.created_at,
        "projectId": dep.project_id,
        "ownerId": TEAM_ID,
        "plan": "pro",
        "public": false,
        "regions": ["iad1"],
        "createdIn": "sfo1",
        "source": "git",
        "target": dep.target,
        "meta": meta(dep),
        "creator": creator(),
        "team": { "id": TEAM_ID, "name": "Shiplog Demo", "slug": crate::demo::state::TEAM_SLUG },
        "project": { "id": dep.project_id, "name": dep.project, "framework": "nextjs" },
        "inspectorUrl": dep.inspector_url(),
        "alias": aliases(dep, p.state),
        "aliasAssigned": p.state == ReadyState::Ready,
        "aliasError": null,
        "aliasFinal": null,
        "automaticAliases": [],
        "build": { "env": [] },
        "env": [],
        "builds": [],
        "buildSkipped": false,
        "isInConcurrentBuildsQueue": p.state == ReadyState::Queued,
        "isInSystemBuildsQueue": false,
        "projectSettings": {
            "framework": "nextjs",
            "buildCommand": null,
            "installCommand": null,
            "outputDirectory": null,
            "rootDirectory": null,
            "nodeVersion": "22.x",
        },
        "gitSource": {
            "type": "github",
            "repoId": "742184503",
            "ref": dep.branch,
            "sha": dep.commit_sha,
            "prId": null,
        },
        "routes": null,
        "lambdas": [],
        "checksState": "completed",
        "checksConclusion": "succeeded",
    });
    add_outcome(&mut v, p.state, p.finished_at);
    v
}

/// A ready deployment's branch alias.
fn aliases(dep: &SimDeployment, state: ReadyState) -> Value {
    if state != ReadyState::Ready {
        return json!([]);
    }
    json!([format!(
        "{}-git-{}-{}.vercel.app",
        dep.project,
        dep.branch.replace('/', "-"),
        crate::demo::state::TEAM_SLUG
    )])
}

/// The fields of a finished build: when it became ready, failed (and why) or was canceled.
fn add_outcome(v: &mut Value, state: ReadyState, finished_at: Option<i64>) {
    match state {
        ReadyState::Ready => {
            v["ready"] = opt_ms(finished_at);
            v["readySubstate"] = json!("PROMOTED");
        }
        ReadyState::Error => {
            v["buildErrorAt"] = opt_ms(finished_at);
            v["errorCode"] = json!("BUILD_FAILED");
            v["errorMessage"] = json!("The build failed. Check the build logs for details.");
            v["errorStep"] = json!("build");
        }
        ReadyState::Canceled => {
            v["canceledAt"] = opt_ms(finished_at);
        }
        _ => {}
    }
}
