//! Read side: users, drives, items, children with paging.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::GraphError;
use super::route::{Base, Owner};
use super::{Ctx, resolve};
use crate::store::Drive;

const DEFAULT_PAGE: usize = 200;
const MAX_PAGE: usize = 1000;

pub fn user_json(ctx: &Ctx, user: &crate::config::User) -> Response {
    Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#users/$entity", ctx.base),
        "id": user.id,
        "displayName": user.display_name,
        "userPrincipalName": user.user_principal_name,
        "mail": user.user_principal_name,
        "businessPhones": [],
    }))
    .into_response()
}

pub async fn drive(ctx: &Ctx, drive: std::sync::Arc<Drive>, prefix: String) -> Response {
    let spec = ctx.view_spec(&drive, prefix, false);
    let select = ctx.query.get("$select").cloned();
    let v = drive
        .run(move |d, t| super::json::drive(&spec.view(d), t))
        .await;
    Json(super::json::select(v, select.as_deref())).into_response()
}

pub async fn drives(ctx: &Ctx, owner: Owner) -> Result<Response, GraphError> {
    let shared = &ctx.shared;
    let list: Vec<_> = match owner {
        Owner::Me => {
            let uid = ctx
                .caller
                .user_id
                .clone()
                .ok_or_else(resolve::me_required)?;
            shared.drives.for_user(&uid).into_iter().collect()
        }
        Owner::User(u) => {
            let user = resolve::user_id(shared, &u).ok_or_else(GraphError::item_not_found)?;
            shared.drives.for_user(&user.id).into_iter().collect()
        }
        Owner::Site(s) => shared.drives.for_site(&s).into_iter().collect(),
    };
    let mut value = Vec::new();
    for d in list {
        if resolve::check_access(&ctx.caller, &d).is_err() {
            continue;
        }
        let spec = ctx.view_spec(&d, format!("/drives/{}", d.id), false);
        value.push(
            d.run(move |dr, t| super::json::drive(&spec.view(dr), t))
                .await,
        );
    }
    Ok(Json(json!({"value": value})).into_response())
}

pub async fn item(
    ctx: &Ctx,
    drive: std::sync::Arc<Drive>,
    prefix: String,
    base: Base,
    path: Vec<String>,
) -> Result<Response, GraphError> {
    let spec = ctx.view_spec(&drive, prefix, false);
    let select = ctx.query.get("$select").cloned();
    let v = drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            super::json::item(&spec.view(d), t, &id).ok_or_else(GraphError::item_not_found)
        })
        .await?;
    Ok(Json(super::json::select(v, select.as_deref())).into_response())
}

pub async fn children(
    ctx: &Ctx,
    drive: std::sync::Arc<Drive>,
    prefix: String,
    base: Base,
    path: Vec<String>,
) -> Result<Response, GraphError> {
    let top = match ctx.query.get("$top") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| GraphError::invalid(format!("Invalid value '{t}' for $top.")))?
            .min(MAX_PAGE),
        None => DEFAULT_PAGE,
    };
    let offset = match ctx.query.get("$skiptoken") {
        Some(t) => decode_skiptoken(t)
            .ok_or_else(|| GraphError::invalid("The $skiptoken is not valid."))?,
        None => 0,
    };
    let spec = ctx.view_spec(&drive, prefix, false);
    let select = ctx.query.get("$select").cloned();
    let (value, more) = drive
        .run(move |d, t| {
            let id = resolve::item(t, &base, &path)?;
            let ids: Vec<String> = t.children_of(&id).iter().map(|n| n.id.clone()).collect();
            let view = spec.view(d);
            let page: Vec<Value> = ids
                .iter()
                .skip(offset)
                .take(top)
                .filter_map(|c| super::json::item(&view, t, c))
                .map(|v| super::json::select(v, select.as_deref()))
                .collect();
            Ok::<_, GraphError>((page, ids.len() > offset + top))
        })
        .await?;
    let mut body = json!({ "value": value });
    if more {
        body["@odata.nextLink"] = json!(ctx.next_link(
            &[("$skiptoken", encode_skiptoken(offset + top))],
            &["$skiptoken"]
        ));
    }
    Ok(Json(body).into_response())
}

fn encode_skiptoken(offset: usize) -> String {
    crate::util::b64url(format!("children:{offset}").as_bytes())
}

fn decode_skiptoken(t: &str) -> Option<usize> {
    let raw = String::from_utf8(crate::util::b64url_decode(t)?).ok()?;
    raw.strip_prefix("children:")?.parse().ok()
}
