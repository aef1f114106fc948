//! The stub homeserver: every endpoint the bot calls, answered at once from [`World`], with the
//! appservice's identity checked the way Synapse checks it (`as_token`, then `user_id` and
//! `device_id` in the query) and every request counted per endpoint (`GET /_stub/counts`).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
    Extension, Json, Router,
};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use super::world::{displayname, person, Event, Membership, World};

/// The labels under which what the stub pushes to the bot is counted.
pub const PUSHED_TRANSACTIONS: &str = "→ bot: PUT /_matrix/app/v1/transactions/{txn}";
pub const PUSHED_EVENTS: &str = "→ bot: events in those transactions";

/// How many events Synapse puts into one transaction at most.
const EVENTS_PER_TRANSACTION: usize = 100;

/// Who the stub is for.
#[derive(Debug, Clone)]
pub struct StubConfig {
    pub domain: String,
    pub as_token: String,
    pub hs_token: String,
    pub appservice_id: String,
    pub bot: String,
    /// Where the bot listens (for the ping).
    pub bot_url: String,
}

/// The stub: its config, its world and its request counts.
pub struct Stub {
    pub config: StubConfig,
    world: Mutex<World>,
    counts: Mutex<BTreeMap<String, u64>>,
    http: reqwest::Client,
    /// Woken when the outbox has events for the bot.
    outbox_ready: Notify,
    stopped: watch::Sender<bool>,
}

/// The user and device a request acts as.
#[derive(Debug, Clone)]
struct Caller {
    user: String,
    device: String,
}

type Params = Query<HashMap<String, String>>;

impl Stub {
    pub fn new(config: StubConfig, world: World) -> Arc<Self> {
        let (world, counts, http) = (Mutex::new(world), Mutex::default(), reqwest::Client::new());
        let (outbox_ready, stopped) = (Notify::new(), watch::Sender::new(false));
        Arc::new(Self { config, world, counts, http, outbox_ready, stopped })
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Requests so far, per endpoint (`METHOD /path/{template}`).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn count(&self, label: impl Into<String>, amount: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(label.into()).or_default() += amount;
    }

    /// Serves the stub on a free loopback port and starts pushing events to the bot; returns
    /// its base URL.
    pub async fn serve(self: &Arc<Self>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let app = router(self.clone());
        let mut stopped = self.stopped.subscribe();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        tokio::spawn(async move { serve.await });
        tokio::spawn(self.clone().push_to_bot());
        url
    }

    /// Stops serving and pushing.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Pushes the outbox to the bot, one transaction at a time (retried until it is taken), as
    /// Synapse does, until stopped.
    async fn push_to_bot(self: Arc<Self>) {
        let mut stopped = self.stopped.subscribe();
        for number in 1.. {
            let batch: Vec<Value> = loop {
                let batch = {
                    let mut world = self.world();
                    let take = world.outbox.len().min(EVENTS_PER_TRANSACTION);
                    world.outbox.drain(..take).collect::<Vec<_>>()
                };
                if !batch.is_empty() {
                    break batch;
                }
                tokio::select! {
                    _ = self.outbox_ready.notified() => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            };
            while !self.transaction(number, &batch).await {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        }
    }

    /// One transaction to the bot; whether it took it.
    async fn transaction(&self, number: u64, events: &[Value]) -> bool {
        self.count(PUSHED_TRANSACTIONS, 1);
        self.count(PUSHED_EVENTS, events.len() as u64);
        let answer = self
            .http
            .put(format!("{}/_matrix/app/v1/transactions/hs-{number}", self.config.bot_url))
            .bearer_auth(&self.config.hs_token)
            .json(&json!({ "events": events }))
            .send()
            .await;
        answer.is_ok_and(|answer| answer.status().is_success())
    }
}

fn router(stub: Arc<Stub>) -> Router {
    const C: &str = "/_matrix/client/v3";
    let matrix = Router::new()
        .route(&format!("{C}/register"), post(register))
        .route(&format!("{C}/login"), post(login))
        .route(&format!("{C}/devices/{{device}}"), get(get_device))
        .route(&format!("{C}/profile/{{user}}"), get(get_profile))
        .route(&format!("{C}/profile/{{user}}/{{field}}"), get(get_profile_field).put(ok_empty))
        .route(&format!("{C}/createRoom"), post(create_room))
        .route(&format!("{C}/rooms/{{room}}/send/{{event_type}}/{{txn}}"), put(send))
        .route(&format!("{C}/rooms/{{room}}/redact/{{event}}/{{txn}}"), put(redact))
        .route(&format!("{C}/rooms/{{room}}/state/{{event_type}}"), get(state_without_key))
        .route(&format!("{C}/rooms/{{room}}/state/{{event_type}}/"), get(state_without_key))
        .route(&format!("{C}/rooms/{{room}}/state/{{event_type}}/{{key}}"), get(state))
        .route(&format!("{C}/rooms/{{room}}/event/{{event}}"), get(not_found))
        .route(&format!("{C}/rooms/{{room}}/joined_members"), get(joined_members))
        .route(&format!("{C}/rooms/{{room}}/invite"), post(invite))
        .route(&format!("{C}/rooms/{{room}}/leave"), post(leave))
        .route(&format!("{C}/join/{{room}}"), post(join))
        .route(&format!("{C}/joined_rooms"), get(joined_rooms))
        .route(&format!("{C}/user/{{user}}/account_data/{{event_type}}"), put(account_data))
        .route(&format!("{C}/directory/room/{{alias}}"), get(resolve_alias))
        .route("/_matrix/client/v1/rooms/{room}/hierarchy", get(hierarchy))
        .route("/_matrix/client/v1/appservice/{id}/ping", post(ping))
        .route("/_synapse/admin/v2/users", get(admin_users))
        .route("/_synapse/admin/v2/users/{user}", get(admin_user))
        .route("/_synapse/admin/v1/rooms/{room}/members", get(admin_room_members))
        .route_layer(middleware::from_fn_with_state(stub.clone(), authenticate));
    let own = Router::new().route("/_stub/counts", get(counts));
    matrix
        .merge(own)
        .fallback(unrecognized)
        .layer(middleware::from_fn_with_state(stub.clone(), count_request))
        .layer(DefaultBodyLimit::disable())
        .with_state(stub)
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (status, Json(json!({ "errcode": errcode, "error": message }))).into_response()
}

fn ok(body: Value) -> Response {
    Json(body).into_response()
}

fn forbidden(message: &str) -> Response {
    error(StatusCode::FORBIDDEN, "M_FORBIDDEN", message)
}

fn not_found_error(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "M_NOT_FOUND", message)
}

/// A request body as JSON (`null` when empty or not JSON).
fn json_body(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// Counts every request under its route template; a state request under its event type too.
async fn count_request(State(stub): State<Arc<Stub>>, request: Request, next: Next) -> Response {
    let label = match request.extensions().get::<MatchedPath>() {
        Some(matched) if matched.as_str().contains("/state/") => {
            let event_type = request.uri().path().split("/state/").nth(1).unwrap_or("");
            let event_type = event_type.split('/').next().unwrap_or("");
            Some(format!("{} {}", request.method(), matched.as_str().replace("{event_type}", event_type)))
        }
        Some(matched) if matched.as_str().starts_with("/_stub/") => None,
        Some(matched) => Some(format!("{} {}", request.method(), matched.as_str())),
        None => Some(format!("UNRECOGNIZED {} {}", request.method(), request.uri().path())),
    };
    if let Some(label) = label {
        stub.count(label, 1);
    }
    next.run(request).await
}

/// Checks the `as_token` and the asserted identity (`user_id`, `device_id`), like Synapse does
/// for an application service.
async fn authenticate(
    State(stub): State<Arc<Stub>>,
    Query(params): Params,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request.headers().get("authorization").and_then(|value| value.to_str().ok());
    match token.and_then(|value| value.strip_prefix("Bearer ")) {
        None => return error(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "Missing access token"),
        Some(token) if token != stub.config.as_token => {
            return error(StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN", "Unknown access token")
        }
        Some(_) => {}
    }
    let user = params.get("user_id").cloned().unwrap_or_else(|| stub.config.bot.clone());
    let persona_prefix = format!("{}_", stub.config.bot.split(':').next().unwrap_or_default());
    if user != stub.config.bot && !user.starts_with(&persona_prefix) {
        return error(StatusCode::FORBIDDEN, "M_EXCLUSIVE", "user_id is outside the appservice's namespace");
    }
    let device = params.get("device_id").cloned().unwrap_or_default();
    if !device.is_empty() && !stub.world().devices.contains(&device) {
        return forbidden("unknown device_id for this user");
    }
    request.extensions_mut().insert(Caller { user, device });
    next.run(request).await
}

async fn unrecognized() -> Response {
    error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "The stub does not implement this endpoint")
}

async fn not_found() -> Response {
    not_found_error("The stub keeps no events")
}

async fn ok_empty() -> Response {
    ok(json!({}))
}

async fn counts(State(stub): State<Arc<Stub>>) -> Response {
    ok(json!(stub.counts()))
}

async fn register(State(stub): State<Arc<Stub>>, body: Bytes) -> Response {
    let body = json_body(&body);
    let localpart = body["username"].as_str().unwrap_or_default();
    let user = format!("@{localpart}:{}", stub.config.domain);
    if !stub.world().registered.insert(user.clone()) {
        return error(StatusCode::BAD_REQUEST, "M_USER_IN_USE", "User ID already taken.");
    }
    ok(json!({ "user_id": user }))
}

async fn login(State(stub): State<Arc<Stub>>, body: Bytes) -> Response {
    let body = json_body(&body);
    let Some(device) = body["device_id"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "M_BAD_JSON", "the stub wants a device_id");
    };
    stub.world().devices.insert(device.to_owned());
    let user = body["identifier"]["user"].as_str().unwrap_or(&stub.config.bot).to_owned();
    ok(json!({ "user_id": user, "access_token": "stub-device-token", "device_id": device }))
}

async fn get_device(State(stub): State<Arc<Stub>>, Path(device): Path<String>) -> Response {
    match stub.world().devices.contains(&device) {
        true => ok(json!({ "device_id": device, "display_name": "matrix-broadcast" })),
        false => not_found_error("Device not found"),
    }
}

async fn get_profile(State(stub): State<Arc<Stub>>, Path(user): Path<String>) -> Response {
    match displayname(&user, &stub.config.domain) {
        Some(name) => ok(json!({ "displayname": name })),
        None => not_found_error("Profile was not found"),
    }
}

async fn get_profile_field(
    State(stub): State<Arc<Stub>>,
    Path((user, field)): Path<(String, String)>,
) -> Response {
    match (displayname(&user, &stub.config.domain), field.as_str()) {
        (Some(name), "displayname") => ok(json!({ "displayname": name })),
        (Some(_), _) => not_found_error("The user has no such profile field"),
        (None, _) => not_found_error("Profile was not found"),
    }
}

async fn create_room(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let body = json_body(&body);
    let invitees: Vec<String> = body["invite"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|user| Some(user.as_str()?.to_owned()))
        .collect();
    let mut world = stub.world();
    let room_id = world.fresh_id('!', &stub.config.domain);
    // Invitees accept at once, as people who read their DMs do.
    world.add_room(
        &room_id,
        &caller.user,
        std::iter::once(caller.user.clone()).chain(invitees.iter().cloned()),
    );
    let room = world.rooms.get_mut(&room_id).expect("just added");
    room.creation_content = body.get("creation_content").cloned();
    room.is_space = body["creation_content"]["type"] == "m.space";
    push_creation(&stub, &mut world, &room_id, &caller.user, &invitees);
    ok(json!({ "room_id": room_id }))
}

/// The events Synapse makes for a new private room, and the invitees' invites and joins.
fn push_creation(stub: &Stub, world: &mut World, room_id: &str, creator: &str, invitees: &[String]) {
    let room = &world.rooms[room_id];
    let state: Vec<(&str, Value)> =
        ["m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.history_visibility"]
            .into_iter()
            .filter_map(|event_type| Some((event_type, room.state(event_type, "")?)))
            .chain([("m.room.guest_access", json!({ "guest_access": "can_join" }))])
            .collect();
    let (domain, state_key) = (&stub.config.domain, Some(""));
    let name = displayname(creator, domain);
    world.push_member(
        room_id,
        creator,
        creator,
        json!({ "membership": "join", "displayname": name }),
        domain,
    );
    for (event_type, content) in state {
        world.push(Event { event_type, room: room_id, sender: creator, state_key }, content, domain);
    }
    for invitee in invitees {
        world.push_member(
            room_id,
            creator,
            invitee,
            json!({ "membership": "invite", "is_direct": true }),
            domain,
        );
        let name = displayname(invitee, domain);
        world.push_member(
            room_id,
            invitee,
            invitee,
            json!({ "membership": "join", "displayname": name }),
            domain,
        );
    }
    stub.outbox_ready.notify_one();
}

async fn send(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path((room, event_type, txn)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let mut world = stub.world();
    let joined = world.rooms.get(&room).and_then(|room| room.membership(&caller.user));
    if joined != Some(Membership::Join) {
        return forbidden("The sender is not in the room");
    }
    let event = Event { event_type: &event_type, room: &room, sender: &caller.user, state_key: None };
    let event_id = world.send(event, &caller.device, &txn, &json_body(&body), &stub.config.domain);
    stub.outbox_ready.notify_one();
    ok(json!({ "event_id": event_id }))
}

async fn redact(
    State(stub): State<Arc<Stub>>,
    Path((_room, _event, _txn)): Path<(String, String, String)>,
) -> Response {
    let event_id = stub.world().fresh_id('$', &stub.config.domain);
    ok(json!({ "event_id": event_id }))
}

async fn state_without_key(
    stub: State<Arc<Stub>>,
    caller: Extension<Caller>,
    Path((room, event_type)): Path<(String, String)>,
    params: Params,
) -> Response {
    state(stub, caller, Path((room, event_type, String::new())), params).await
}

async fn state(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path((room_id, event_type, key)): Path<(String, String, String)>,
    Query(params): Params,
) -> Response {
    let world = stub.world();
    let Some(room) = world.rooms.get(&room_id) else { return forbidden("Unknown room") };
    if room.membership(&caller.user).is_none() {
        return forbidden("You are not in this room");
    }
    let Some(content) = room.state(&event_type, &key) else {
        return not_found_error("Event not found.");
    };
    if params.get("format").map(String::as_str) != Some("event") {
        return ok(content);
    }
    let event = json!({
        "type": event_type, "state_key": key, "content": content, "sender": room.creator,
        "room_id": room_id, "event_id": format!("$state-{event_type}"), "origin_server_ts": 0,
    });
    ok(event)
}

async fn joined_members(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path(room): Path<String>,
) -> Response {
    let world = stub.world();
    let Some(room) = world.rooms.get(&room) else { return forbidden("Unknown room") };
    if room.membership(&caller.user) != Some(Membership::Join) {
        return forbidden("You aren't a member of the room");
    }
    let joined: serde_json::Map<String, Value> = room
        .joined()
        .map(|user| {
            let name = displayname(user, &stub.config.domain);
            (user.to_owned(), json!({ "display_name": name, "avatar_url": null }))
        })
        .collect();
    ok(json!({ "joined": joined }))
}

async fn invite(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
    body: Bytes,
) -> Response {
    let user = json_body(&body)["user_id"].as_str().unwrap_or_default().to_owned();
    let mut world = stub.world();
    let Some(room) = world.rooms.get_mut(&room_id) else { return forbidden("Unknown room") };
    if room.membership(&user) == Some(Membership::Join) {
        return forbidden("The user is already in the room.");
    }
    room.set_membership(&user, Membership::Invite);
    world.push_member(&room_id, &caller.user, &user, json!({ "membership": "invite" }), &stub.config.domain);
    stub.outbox_ready.notify_one();
    ok(json!({}))
}

async fn leave(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path(room): Path<String>,
) -> Response {
    if let Some(room) = stub.world().rooms.get_mut(&room) {
        room.set_membership(&caller.user, Membership::Leave);
    }
    ok(json!({}))
}

async fn join(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path(room): Path<String>,
) -> Response {
    let mut world = stub.world();
    let room_id = world.aliases.get(&room).cloned().unwrap_or(room);
    let Some(room) = world.rooms.get_mut(&room_id) else { return not_found_error("No such room") };
    if room.membership(&caller.user).is_none_or(|membership| membership == Membership::Leave) {
        return forbidden("You are not invited to this room.");
    }
    room.set_membership(&caller.user, Membership::Join);
    let (user, name) = (&caller.user, displayname(&caller.user, &stub.config.domain));
    let content = json!({ "membership": "join", "displayname": name });
    world.push_member(&room_id, user, user, content, &stub.config.domain);
    stub.outbox_ready.notify_one();
    ok(json!({ "room_id": room_id }))
}

async fn joined_rooms(State(stub): State<Arc<Stub>>, Extension(caller): Extension<Caller>) -> Response {
    let world = stub.world();
    let rooms: Vec<&String> = world
        .rooms
        .iter()
        .filter(|(_, room)| room.membership(&caller.user) == Some(Membership::Join))
        .map(|(id, _)| id)
        .collect();
    ok(json!({ "joined_rooms": rooms }))
}

async fn account_data(
    State(stub): State<Arc<Stub>>,
    Extension(caller): Extension<Caller>,
    Path((user, event_type)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if user != caller.user {
        return forbidden("Cannot add account data for other users.");
    }
    if event_type == "m.direct" {
        let mut world = stub.world();
        world.direct_writes += 1;
        world.largest_direct = world.largest_direct.max(body.len());
    }
    ok(json!({}))
}

async fn resolve_alias(State(stub): State<Arc<Stub>>, Path(alias): Path<String>) -> Response {
    match stub.world().aliases.get(&alias) {
        Some(room_id) => ok(json!({ "room_id": room_id, "servers": [stub.config.domain] })),
        None => not_found_error("Room alias not found"),
    }
}

/// A space and the rooms right below it, in one page.
async fn hierarchy(State(stub): State<Arc<Stub>>, Path(space): Path<String>) -> Response {
    let world = stub.world();
    let Some(room) = world.rooms.get(&space) else { return forbidden("Unknown room") };
    let chunk = |room_id: &str| {
        let room = world.rooms.get(room_id);
        let is_space = room.is_some_and(|room| room.is_space);
        json!({
            "room_id": room_id, "num_joined_members": room.map_or(0, |room| room.joined().count()),
            "world_readable": false, "guest_can_join": false, "join_rule": "invite",
            "room_type": if is_space { Some("m.space") } else { None }, "children_state": [],
        })
    };
    let rooms: Vec<Value> =
        std::iter::once(space.as_str()).chain(room.children.iter().map(String::as_str)).map(chunk).collect();
    ok(json!({ "rooms": rooms }))
}

/// Pings the bot's own listener, as Synapse does, and reports the round trip.
async fn ping(State(stub): State<Arc<Stub>>, body: Bytes) -> Response {
    let started = Instant::now();
    let transaction_id = json_body(&body)["transaction_id"].clone();
    let answer = stub
        .http
        .post(format!("{}/_matrix/app/v1/ping", stub.config.bot_url))
        .bearer_auth(&stub.config.hs_token)
        .json(&json!({ "transaction_id": transaction_id }))
        .send()
        .await;
    match answer {
        Ok(answer) if answer.status().is_success() => {
            ok(json!({ "duration_ms": started.elapsed().as_millis() as u64 }))
        }
        Ok(answer) => {
            error(StatusCode::BAD_GATEWAY, "M_BAD_STATUS", &format!("the bot answered {}", answer.status()))
        }
        Err(failure) => error(StatusCode::BAD_GATEWAY, "M_CONNECTION_FAILED", &failure.to_string()),
    }
}

/// One account of the admin user list.
fn admin_account(user: &str, domain: &str, n: usize) -> Value {
    json!({
        "name": user, "displayname": displayname(user, domain), "is_guest": false, "admin": false,
        "deactivated": false, "user_type": null, "creation_ts": 1_700_000_000_000u64 + n as u64,
        "last_seen_ts": 1_700_000_000_000u64,
    })
}

/// `/_synapse/admin/v2/users`: the generated accounts by name (or newest first), `from`/`limit`
/// paged, `name` filtered.
async fn admin_users(State(stub): State<Arc<Stub>>, Query(params): Params) -> Response {
    let param = |key: &str, default: usize| params.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (from, limit) = (param("from", 0), param("limit", 100));
    let total = stub.world().server_accounts;
    let domain = &stub.config.domain;
    let newest_first = params.get("dir").map(String::as_str) == Some("b");
    let filter = params.get("name").cloned().unwrap_or_default();
    let matching: Vec<usize> = (0..total)
        .map(|n| if newest_first { total - 1 - n } else { n })
        .filter(|n| filter.is_empty() || person(*n, domain).contains(&filter))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(from)
        .take(limit)
        .map(|n| admin_account(&person(*n, domain), domain, *n))
        .collect();
    let mut body = json!({ "users": page, "total": matching.len() });
    if from + limit < matching.len() {
        body["next_token"] = json!((from + limit).to_string());
    }
    ok(body)
}

async fn admin_user(State(stub): State<Arc<Stub>>, Path(user): Path<String>) -> Response {
    let config = &stub.config;
    if displayname(&user, &config.domain).is_none() {
        return not_found_error("User not found");
    }
    let mut account = admin_account(&user, &config.domain, 0);
    if user == config.bot {
        account["admin"] = json!(true);
        account["appservice_id"] = json!(config.appservice_id);
    }
    ok(account)
}

async fn admin_room_members(State(stub): State<Arc<Stub>>, Path(room): Path<String>) -> Response {
    let world = stub.world();
    let Some(room) = world.rooms.get(&room) else { return not_found_error("Room not found") };
    let members: Vec<&str> = room.joined().collect();
    ok(json!({ "members": members, "total": members.len() }))
}
