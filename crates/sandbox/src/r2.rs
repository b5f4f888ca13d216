//! R2 buckets and objects, as far as D1 backups need them.
//!
//! Buckets can be created, read, listed and deleted (only when empty); objects can be PUT with a
//! raw body, read back (GET answers the raw bytes, not the envelope, as R2 does), listed by
//! `prefix` with a `cursor` (the last key of the previous page; `delimiter` is not supported) and
//! deleted. `last_modified` comes from the sandbox clock, so a test can age a backup without
//! sleeping. With a state file, the index is `<state file>.r2/index.json` and each object's bytes
//! are a file beside it named by the SHA-256 of bucket and key; without one, all stays in memory.
//! Object keys may contain `/` (raw or as `%2F`). Error codes follow R2's: 10004 a bucket that
//! already exists, 10006 no such bucket, 10007 no such key, 10008 a bucket that is not empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::envelope::{ApiError, Reply};
use super::request::Call;
use super::world::World;

const LOCATIONS: [&str; 6] = ["apac", "eeur", "enam", "weur", "wnam", "oc"];
const MAX_PER_PAGE: usize = 1000;

/// Every bucket, with where they are saved.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    dir: Option<PathBuf>,
    buckets: BTreeMap<String, Bucket>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Bucket {
    creation_date: String,
    location: String,
    storage_class: String,
    objects: BTreeMap<String, Object>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Object {
    etag: String,
    size: usize,
    last_modified: String,
    #[serde(skip)]
    bytes: Bytes,
}

impl Buckets {
    /// The buckets saved next to `state`, or none kept in memory when there is no state file.
    pub(crate) fn load(state: Option<&Path>) -> std::io::Result<Buckets> {
        let Some(state) = state else {
            return Ok(Buckets::default());
        };
        let mut name = state.file_name().unwrap_or_default().to_os_string();
        name.push(".r2");
        let dir = state.with_file_name(name);
        let index = dir.join("index.json");
        let mut buckets: BTreeMap<String, Bucket> = match std::fs::read(&index) {
            Ok(text) => serde_json::from_slice(&text).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        for (bucket, content) in &mut buckets {
            for (key, object) in &mut content.objects {
                object.bytes = Bytes::from(std::fs::read(dir.join(object_file(bucket, key)))?);
            }
        }
        Ok(Buckets {
            dir: Some(dir),
            buckets,
        })
    }

    fn save(&self, written: Option<(&str, &str, &[u8])>) -> Result<(), ApiError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let io = |e: std::io::Error| {
            tracing::error!("could not save R2 objects in {}: {e}", dir.display());
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                10001,
                "Internal error: the sandbox could not save R2",
            )
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        if let Some((bucket, key, bytes)) = written {
            write_atomically(&dir.join(object_file(bucket, key)), bytes).map_err(io)?;
        }
        let index = serde_json::to_vec_pretty(&self.buckets).map_err(std::io::Error::other);
        write_atomically(&dir.join("index.json"), &index.map_err(io)?).map_err(io)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn object_file(bucket: &str, key: &str) -> String {
    hex::encode(Sha256::digest(format!("{bucket}/{key}").as_bytes()))
}

fn no_bucket() -> ApiError {
    ApiError::not_found(10006, "The specified bucket does not exist.")
}

fn bucket_json(name: &str, bucket: &Bucket) -> Value {
    json!({
        "name": name,
        "creation_date": bucket.creation_date,
        "location": bucket.location,
        "storage_class": bucket.storage_class,
    })
}

/// R2's bucket names: 3 to 63 lowercase letters, digits and dashes, not starting or ending with `-`.
fn valid_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `GET /accounts/{a}/r2/buckets[?name_contains=]`.
pub(crate) fn list_buckets(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let filter = call.query("name_contains").unwrap_or_default();
    let buckets: Vec<Value> = world
        .lifecycle
        .r2
        .buckets
        .iter()
        .filter(|(name, _)| name.contains(filter))
        .map(|(name, bucket)| bucket_json(name, bucket))
        .collect();
    let mut reply = Reply::ok(json!({ "buckets": buckets }));
    reply.body["result_info"] = json!({"per_page": MAX_PER_PAGE});
    Ok(reply)
}

/// `POST /accounts/{a}/r2/buckets`.
pub(crate) fn create_bucket(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let body = call.json_object()?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(10005, "`name` (string) is required"))?;
    if !valid_name(name) {
        return Err(ApiError::bad_request(
            10005,
            format!(
                "The bucket name `{name}` is not valid: use 3 to 63 lowercase letters, digits and dashes"
            ),
        ));
    }
    let location = match body.get("locationHint") {
        None | Some(Value::Null) => "weur".to_owned(),
        Some(Value::String(hint)) if LOCATIONS.contains(&hint.as_str()) => hint.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(
                10005,
                format!("Invalid `locationHint` {other}"),
            ));
        }
    };
    let storage_class = match body.get("storageClass").and_then(Value::as_str) {
        None => "Standard",
        Some(class @ ("Standard" | "InfrequentAccess")) => class,
        Some(other) => {
            return Err(ApiError::bad_request(
                10005,
                format!("Invalid `storageClass` {other}"),
            ));
        }
    };
    let r2 = &mut world.lifecycle.r2;
    if r2.buckets.contains_key(name) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            10004,
            "The bucket you tried to create already exists, and you own it.",
        ));
    }
    let bucket = Bucket {
        creation_date: world.lifecycle.clock.now().to_string(),
        location,
        storage_class: storage_class.to_owned(),
        objects: BTreeMap::new(),
    };
    let reply = Reply::ok(bucket_json(name, &bucket));
    r2.buckets.insert(name.to_owned(), bucket);
    r2.save(None)?;
    Ok(reply)
}

/// `GET /accounts/{a}/r2/buckets/{bucket}`.
pub(crate) fn get_bucket(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let name = call.param(1);
    let bucket = world.lifecycle.r2.buckets.get(name).ok_or_else(no_bucket)?;
    Ok(Reply::ok(bucket_json(name, bucket)))
}

/// `DELETE /accounts/{a}/r2/buckets/{bucket}`: only an empty bucket.
pub(crate) fn delete_bucket(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let r2 = &mut world.lifecycle.r2;
    let bucket = r2.buckets.get(call.param(1)).ok_or_else(no_bucket)?;
    if !bucket.objects.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            10008,
            "The bucket you tried to delete is not empty.",
        ));
    }
    r2.buckets.remove(call.param(1));
    r2.save(None)?;
    Ok(Reply::ok(json!({})))
}

/// `GET …/r2/buckets/{bucket}/objects[?prefix=&cursor=&per_page=&start_after=]`.
pub(crate) fn list_objects(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let bucket = world
        .lifecycle
        .r2
        .buckets
        .get(call.param(1))
        .ok_or_else(no_bucket)?;
    if call.query("delimiter").is_some() {
        return Err(ApiError::bad_request(
            10005,
            "The sandbox does not support `delimiter`",
        ));
    }
    let per_page = match call.query("per_page") {
        None => MAX_PER_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PER_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    10005,
                    format!("`per_page` must be a whole number from 1 to {MAX_PER_PAGE}"),
                )
            })?,
    };
    let prefix = call.query("prefix").unwrap_or_default();
    let after = call.query("cursor").or(call.query("start_after"));
    let mut matching = bucket
        .objects
        .iter()
        .filter(|(key, _)| key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a));
    let page: Vec<(&String, &Object)> = matching.by_ref().take(per_page).collect();
    let more = matching.next().is_some();
    let items: Vec<Value> = page
        .iter()
        .map(|(key, object)| {
            json!({
                "key": key,
                "etag": object.etag,
                "size": object.size,
                "last_modified": object.last_modified,
                "storage_class": bucket.storage_class,
                "http_metadata": {},
                "custom_metadata": {},
            })
        })
        .collect();
    let mut reply = Reply::ok(Value::Array(items));
    let mut info = json!({"per_page": per_page, "is_truncated": more});
    if let (true, Some((last, _))) = (more, page.last()) {
        info["cursor"] = json!(last);
    }
    reply.body["result_info"] = info;
    Ok(reply)
}

/// `PUT …/objects/{key}`: the raw body is the object.
pub(crate) fn put_object(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let (bucket_name, key) = (call.param(1), call.param(2));
    let now = world.lifecycle.clock.now().to_string();
    let r2 = &mut world.lifecycle.r2;
    let bucket = r2.buckets.get_mut(bucket_name).ok_or_else(no_bucket)?;
    let etag = hex::encode(<md5::Md5 as md5::Digest>::digest(&call.body));
    let object = Object {
        etag: etag.clone(),
        size: call.body.len(),
        last_modified: now.clone(),
        bytes: call.body.clone(),
    };
    let storage_class = bucket.storage_class.clone();
    bucket.objects.insert(key.to_owned(), object);
    r2.save(Some((bucket_name, key, &call.body)))?;
    Ok(Reply::ok(json!({
        "key": key,
        "etag": etag,
        "size": call.body.len().to_string(),
        "storage_class": storage_class,
        "uploaded": now,
        "version": etag,
    })))
}

/// `GET …/objects/{key}`: the raw bytes.
pub(crate) fn get_object(call: &Call, world: &World) -> Result<Reply, ApiError> {
    let bucket = world
        .lifecycle
        .r2
        .buckets
        .get(call.param(1))
        .ok_or_else(no_bucket)?;
    let object = bucket
        .objects
        .get(call.param(2))
        .ok_or_else(|| ApiError::not_found(10007, "The specified key does not exist."))?;
    let mut reply = Reply::raw(object.bytes.clone());
    reply.headers.push(("etag", format!("\"{}\"", object.etag)));
    Ok(reply)
}

/// `DELETE …/objects/{key}`: deleting a missing key succeeds, as in R2.
pub(crate) fn delete_object(call: &Call, world: &mut World) -> Result<Reply, ApiError> {
    let key = call.param(2);
    let r2 = &mut world.lifecycle.r2;
    let bucket = r2.buckets.get_mut(call.param(1)).ok_or_else(no_bucket)?;
    if bucket.objects.remove(key).is_some() {
        if let Some(dir) = &r2.dir {
            let _ = std::fs::remove_file(dir.join(object_file(call.param(1), key)));
        }
        r2.save(None)?;
    }
    Ok(Reply::ok(json!({ "key": key })))
}
