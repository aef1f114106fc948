//! The delivery workers: claim a due delivery, make sure the recipient's DM exists, send the
//! personalised message, record the outcome.
//!
//! Transaction IDs derive from (broadcast, recipient) and messages go out from the bot's logged-in
//! device, so a re-send after any crash (of the bot or of the homeserver) returns the event that
//! was already sent instead of a second copy. A homeserver outage (unreachable or 5xx, and
//! confirmed by a probe) pauses every worker until one probe finds it again, and uses up no try;
//! a 5xx while the probe finds the homeserver up is that copy's own error. A try that failed
//! (rate-limited, or that copy's 5xx) comes back after an exponential backoff with jitter (or the homeserver's `retry_after`), up to
//! `broadcast.max_attempts`; permanent failures, and deliveries still not sent
//! `broadcast.give_up_after_hours` after they became due, are recorded with a reason for
//! `!bc status`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use rand::Rng;
use ruma::{OwnedEventId, OwnedTransactionId, RoomId, UserId};
use tokio::sync::{mpsc, watch, Mutex, Notify};

use crate::{
    base::{
        e2ee::Crypto,
        i18n::Language,
        matrix::MatrixError,
        store::{
            now_ms, Broadcast, BroadcastId, Claim, DeliveryState, Outcome, QueuePosition, Store, StoreError,
        },
        telemetry::HomeserverHealth,
    },
    rooms::{
        copies::personalise,
        dm::{Dm, DmError},
        notices::post_notice,
        Rooms,
    },
};

/// How long a worker holds a claimed delivery before another may take it over.
pub const LEASE_MS: i64 = 120_000;
/// When a delivery that met a failing database is tried again.
const STORE_FAILED_RETRY: Duration = Duration::from_secs(1);
/// How long a stopping worker lets the send it is in finish before it gives the delivery back.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// When a delivery whose DM another process is creating is tried again.
const CREATING_ELSEWHERE_RETRY: Duration = Duration::from_secs(5);
/// The first and the longest wait between two probes of a homeserver that is down.
const PROBE_FIRST_DELAY: Duration = Duration::from_millis(500);
const PROBE_MAX_DELAY: Duration = Duration::from_secs(30);
/// The most outcomes recorded in one statement.
const RECORD_BATCH: usize = 512;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long outcomes are tried again while the database fails: well within the lease.
const RECORD_PATIENCE: Duration = Duration::from_secs(60);
/// How long a worker sends from the broadcast as it read it.
const BROADCAST_FRESH: Duration = Duration::from_secs(2);
/// How often the claimer reads the queue from its start, and makes the deliveries of expired
/// leases claimable again.
const QUEUE_RESTART_EVERY: Duration = Duration::from_secs(10);

/// The delivery layer's service: the queue of copies to send and the workers that send them,
/// through the senders of the rooms layer.
pub struct Delivery {
    pub rooms: Arc<Rooms>,
    /// Whether the homeserver answers (shared with `/health`).
    health: Arc<HomeserverHealth>,
    /// Woken when deliveries may be due (a broadcast started, a welcome was queued).
    ready: Notify,
}

impl Delivery {
    pub fn new(rooms: Arc<Rooms>, health: Arc<HomeserverHealth>) -> Self {
        Self { rooms, health, ready: Notify::new() }
    }

    /// Wakes the workers: deliveries may be due now.
    pub fn wake(&self) {
        self.ready.notify_waiters();
    }
}

/// Runs `broadcast.concurrency` workers until `stopped`. One task claims due deliveries in
/// batches and hands them to the workers; another records the workers' outcomes in batches, so
/// that a delivery costs a fraction of a database round trip besides its sends.
///
/// At the stop each worker finishes the send it is in (for up to [`STOP_GRACE`]) and starts no
/// other; what was claimed and not sent goes back to the queue, so nothing stays `sending`.
pub async fn run_workers(delivery: Arc<Delivery>, stopped: watch::Receiver<bool>) {
    let outage = Arc::new(Outage::default());
    let concurrency = delivery.rooms.broadcast.concurrency.max(1);
    let (claims, claimed) = mpsc::channel::<Claim>(concurrency);
    let claimed = Arc::new(Mutex::new(claimed));
    let (outcomes, to_record) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(delivery.clone(), to_record));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (delivery, outage, claimed, outcomes) =
                (delivery.clone(), outage.clone(), claimed.clone(), outcomes.clone());
            tokio::spawn(worker(delivery, outage, claimed, outcomes, stopped.clone()))
        })
        .collect();
    claim_due(&delivery, &outage, claims, stopped).await;
    for worker in workers {
        if let Err(error) = worker.await {
            tracing::error!(%error, "a delivery worker failed");
        }
    }
    // The claimer has stopped: what it handed over and no worker started goes back.
    let mut unstarted = Vec::new();
    while let Ok(claim) = claimed.lock().await.try_recv() {
        unstarted.push(claim);
    }
    give_back(&delivery, unstarted, &outcomes).await;
    drop(outcomes);
    if let Err(error) = recorder.await {
        tracing::error!(%error, "the outcome recorder failed");
    }
}

/// Puts claims that were never tried back in the queue, without counting a try, and forgets
/// the DMs recorded for them and not asked for (another process may create those at once).
async fn give_back(
    delivery: &Delivery,
    claims: Vec<Claim>,
    outcomes: &mpsc::UnboundedSender<(Claim, Outcome)>,
) {
    if claims.is_empty() {
        return;
    }
    tracing::info!(deliveries = claims.len(), "giving back deliveries not started before the stop");
    if let Err(error) = delivery.rooms.senders.abandon_untried_dms(&claims).await {
        tracing::warn!(%error, "cannot forget the DMs recorded for deliveries given back");
    }
    // Why the deliveries went back to the queue.
    let stopped = crate::base::i18n::t!(delivery.rooms.language(), "delivery-stopped-before");
    for claim in claims {
        let _ = outcomes.send((claim, Outcome::release(now_ms(), &stopped)));
    }
}

/// Claims due deliveries, as many at once as there is room for in `claims`, until `stopped`.
async fn claim_due(
    delivery: &Delivery,
    outage: &Outage,
    claims: mpsc::Sender<Claim>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut reader = QueueReader { position: QueuePosition::START, restarted_at: None };
    while !*stopped.borrow() {
        outage.wait_until_over(&mut stopped).await;
        reader.restart_when_due(delivery).await;
        let permit = tokio::select! {
            permit = claims.reserve() => permit,
            _ = stopped.wait_for(|stop| *stop) => return,
        };
        let Ok(permit) = permit else { return };
        let room = claims.capacity() as i64 + 1;
        let batch = match claim_batch(delivery, &reader.position, room).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::error!(%error, "cannot claim deliveries");
                Vec::new()
            }
        };
        reader.advance(&batch, room);
        let mut batch = batch.into_iter();
        let Some(first) = batch.next() else {
            drop(permit);
            wait_for_due(delivery, &mut stopped).await;
            continue;
        };
        permit.send(first);
        for claim in batch {
            // Only this task sends, and it claimed no more than there was room for.
            if let Err(error) = claims.try_send(claim) {
                tracing::error!(%error, "a claimed delivery found no room; it is tried again after its lease");
            }
        }
    }
}

/// Where the claimer reads the queue from: after what it claimed last, and from the start again
/// every [`QUEUE_RESTART_EVERY`] (when it also makes the deliveries of expired leases due again)
/// and whenever a claim finds fewer than it asked for.
struct QueueReader {
    position: QueuePosition,
    restarted_at: Option<Instant>,
}

impl QueueReader {
    /// Starts from the start of the queue, with the deliveries of expired leases (a worker that
    /// died) due again, when the last time is [`QUEUE_RESTART_EVERY`] ago.
    async fn restart_when_due(&mut self, delivery: &Delivery) {
        if self.restarted_at.is_some_and(|at| at.elapsed() < QUEUE_RESTART_EVERY) {
            return;
        }
        self.restarted_at = Some(Instant::now());
        self.position = QueuePosition::START;
        match delivery.rooms.store.release_expired_leases().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(released, "deliveries whose lease ran out are due again"),
            Err(error) => tracing::warn!(%error, "cannot make the deliveries of expired leases due again"),
        }
    }

    /// Moves on past `batch`, claimed when `asked` for: from its first claim (what it did not
    /// take comes after), or from the start when it was short (the queue may have more behind).
    fn advance(&mut self, batch: &[Claim], asked: i64) {
        self.position = match (batch.len() as i64) < asked {
            true => QueuePosition::START,
            false => QueuePosition::of_first(batch),
        };
    }
}

/// Up to `limit` due deliveries, claimed, with the intent to create a DM recorded for whoever
/// has none: a handful of statements for the whole batch.
async fn claim_batch(
    delivery: &Delivery,
    position: &QueuePosition,
    limit: i64,
) -> Result<Vec<Claim>, StoreError> {
    let mut batch = delivery.rooms.store.claim_deliveries_from(position, LEASE_MS, limit).await?;
    if let Err(error) = delivery.rooms.senders.begin_dms_for(&mut batch).await {
        // Each delivery records its own intent instead.
        tracing::warn!(%error, "cannot record the intents to create DMs for a batch");
    }
    prepare_encryption(delivery.rooms.crypto.as_deref(), &batch).await;
    Ok(batch)
}

/// Asks for the keys of a batch's recipients at once, when the bot encrypts (its own DMs
/// only: personas send in the clear). Each send would ask for what is missing anyway.
async fn prepare_encryption(crypto: Option<&Crypto>, batch: &[Claim]) {
    let Some(crypto) = crypto else { return };
    let recipients: Vec<(&UserId, Option<&RoomId>)> = batch
        .iter()
        .filter(|claim| claim.persona.is_none() && !claim.opted_out)
        .map(|claim| (claim.user_id.as_ref(), claim.dm.as_ref().and_then(|dm| dm.room_id.as_deref())))
        .collect();
    if let Err(error) = crypto.prepare(&recipients).await {
        tracing::warn!(%error, "cannot fetch the keys of a batch of recipients; each send asks for its own");
    }
}

/// Waits until a delivery may be due: woken when one is queued, or when the next retry is due.
async fn wait_for_due(delivery: &Delivery, stopped: &mut watch::Receiver<bool>) {
    let wait = match delivery.rooms.store.next_due_at().await {
        Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(10, 1000) as u64),
        _ => Duration::from_secs(1),
    };
    tokio::select! {
        _ = delivery.ready.notified() => {}
        _ = tokio::time::sleep(wait) => {}
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}

/// Delivers the claims it is handed until `stopped` (or the claimer stops), and passes on the
/// outcomes.
async fn worker(
    delivery: Arc<Delivery>,
    outage: Arc<Outage>,
    claimed: Arc<Mutex<mpsc::Receiver<Claim>>>,
    outcomes: mpsc::UnboundedSender<(Claim, Outcome)>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut broadcasts = HashMap::new();
    loop {
        let claim = tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return,
            claim = async { claimed.lock().await.recv().await } => match claim {
                Some(claim) => claim,
                None => return,
            },
        };
        outage.wait_until_over(&mut stopped).await;
        if *stopped.borrow() {
            return give_back(&delivery, vec![claim], &outcomes).await;
        }
        let attempt = try_claim(&delivery, &outage, &mut broadcasts, &claim);
        let outcome = within_grace(delivery.rooms.language(), attempt, stopped.clone()).await.unwrap_or_else(|error| {
            // The database failed (it is recorded once it is back): the delivery goes back to the
            // queue without using up a try; a copy already sent is found by its transaction ID.
            tracing::warn!(%error, broadcast = %claim.broadcast_id, "cannot deliver now; tried again shortly");
            Outcome::release(now_ms() + STORE_FAILED_RETRY.as_millis() as i64, &error.to_string())
        });
        if outcomes.send((claim, outcome)).is_err() {
            tracing::error!("the outcome recorder is gone; the delivery is tried again after its lease");
        }
    }
}

/// One try of `claim`.
async fn try_claim(
    delivery: &Delivery,
    outage: &Arc<Outage>,
    broadcasts: &mut HashMap<BroadcastId, (Arc<Broadcast>, Instant)>,
    claim: &Claim,
) -> Result<Outcome, StoreError> {
    match broadcast_of(&delivery.rooms.store, broadcasts, claim).await {
        Ok(broadcast) => deliver(delivery, outage, &broadcast, claim).await,
        // It will never be readable: fail the delivery instead of retrying it forever.
        Err(error @ StoreError::Undecodable { .. }) => {
            Ok(Outcome::end(DeliveryState::Failed, &error.to_string()))
        }
        Err(error) => Err(error),
    }
}

/// The outcome of `attempt`; or, when it has not ended [`STOP_GRACE`] after a stop (a request
/// that hangs), the delivery given back to the queue. A re-send has the same transaction ID,
/// so a message that did go out is not sent twice.
async fn within_grace(
    language: Language,
    attempt: impl std::future::Future<Output = Result<Outcome, StoreError>>,
    mut stopped: watch::Receiver<bool>,
) -> Result<Outcome, StoreError> {
    let grace_over = async move {
        if stopped.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await; // nobody can stop these workers
        }
        tokio::time::sleep(STOP_GRACE).await;
    };
    tokio::select! {
        outcome = attempt => outcome,
        _ = grace_over => {
            tracing::warn!("a send did not end within the grace after the stop: its delivery goes back to the queue");
            Ok(Outcome::release(now_ms(), &crate::base::i18n::t!(language, "delivery-stopped-during")))
        }
    }
}

/// Records the workers' outcomes, all that are waiting in one statement, until every worker
/// stopped.
async fn record_outcomes(delivery: Arc<Delivery>, mut outcomes: mpsc::UnboundedReceiver<(Claim, Outcome)>) {
    let mut batch = Vec::new();
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        record_patiently(&delivery.rooms.store, &batch).await;
        batch.clear();
    }
}

/// Records a batch of outcomes, trying again with backoff while the database fails (a locked
/// file, a dropped connection) for up to [`RECORD_PATIENCE`]. An outcome that still cannot be
/// recorded leaves its delivery claimed: it is sent again after the lease, and the transaction
/// ID makes that the same event.
async fn record_patiently(store: &Store, batch: &[(Claim, Outcome)]) {
    let given_up = Instant::now() + RECORD_PATIENCE;
    let mut delay = Duration::from_millis(100);
    loop {
        let Err(error) = store.record_outcomes(batch).await else { return };
        if Instant::now() + delay > given_up {
            return tracing::error!(%error, outcomes = batch.len(), "cannot record delivery outcomes; they are sent again after their lease");
        }
        tracing::warn!(%error, outcomes = batch.len(), retry_in_ms = delay.as_millis() as u64, "cannot record delivery outcomes yet");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The broadcast of a claim, read again by a worker after [`BROADCAST_FRESH`]: an edit reaches
/// the copies not yet sent soon, and a copy sent with the text before it is edited afterwards
/// (it records the revision it showed).
async fn broadcast_of(
    store: &Store,
    broadcasts: &mut HashMap<BroadcastId, (Arc<Broadcast>, Instant)>,
    claim: &Claim,
) -> Result<Arc<Broadcast>, StoreError> {
    if let Some((broadcast, read)) = broadcasts.get(&claim.broadcast_id) {
        if read.elapsed() < BROADCAST_FRESH {
            return Ok(broadcast.clone());
        }
    }
    let broadcast = Arc::new(store.broadcast(claim.broadcast_id).await?);
    broadcasts.insert(claim.broadcast_id, (broadcast.clone(), Instant::now()));
    Ok(broadcast)
}

/// The deterministic transaction ID of one delivery.
pub fn transaction_id(broadcast: BroadcastId, user: &UserId) -> OwnedTransactionId {
    OwnedTransactionId::from(format!("broadcast-{}-{}", broadcast.0, user))
}

// A debug span: one per delivery costs measurable CPU at 10,000 deliveries/s.
#[tracing::instrument(level = "debug", skip_all, fields(broadcast = %claim.broadcast_id, user = %claim.user_id, attempt = claim.attempts))]
async fn deliver(
    delivery: &Delivery,
    outage: &Arc<Outage>,
    broadcast: &Broadcast,
    claim: &Claim,
) -> Result<Outcome, StoreError> {
    if claim.opted_out {
        metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "skipped").increment(1);
        return Ok(Outcome::end(
            DeliveryState::Skipped,
            &crate::base::i18n::t!(delivery.rooms.language(), "delivery-opted-out"),
        ));
    }
    let failure = match send(delivery, broadcast, claim).await {
        Ok((dm, event)) => {
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "delivered").increment(1);
            if dm.encrypted && delivery.rooms.crypto.is_none() {
                tell_encrypted_dms(delivery, broadcast).await?;
            }
            return Ok(Outcome::delivered(&dm.room, &event, broadcast.revision));
        }
        Err(DmError::Store(error)) => return Err(error),
        Err(error @ DmError::CreatingElsewhere) => {
            let due = now_ms() + CREATING_ELSEWHERE_RETRY.as_millis() as i64;
            return Ok(Outcome::release(due, &error.to_string()));
        }
        Err(DmError::Matrix(error)) => error,
    };
    Ok(after_failure(delivery, outage, broadcast, claim, failure).await)
}

/// When `claim`'s copy became due: when it was queued, or when its broadcast started if that
/// was later (a preview confirmed the next day, a broadcast scheduled `--at` a later time).
fn due_since(broadcast: &Broadcast, claim: &Claim) -> i64 {
    claim.queued_at.max(broadcast.started_at.unwrap_or(claim.queued_at))
}

/// What a failed try of `claim` means: a pause for an outage, a retry, or the end.
async fn after_failure(
    delivery: &Delivery,
    outage: &Arc<Outage>,
    broadcast: &Broadcast,
    claim: &Claim,
    failure: MatrixError,
) -> Outcome {
    let config = &delivery.rooms.broadcast;
    let attempts = claim.attempts as u32;
    let language = delivery.rooms.language();
    let deadline = due_since(broadcast, claim) + config.give_up_after_hours as i64 * 3_600_000;
    let reason = match failure {
        MatrixError::Permanent { .. } => human_reason(language, &failure),
        _ if now_ms() > deadline => {
            let (hours, error) = (config.give_up_after_hours.to_string(), shown_failure(language, &failure));
            crate::base::i18n::t!(language, "delivery-not-within", hours = hours, error = error)
        }
        MatrixError::Waiting { retry_after, message } => {
            // Uses up no try: an encrypted DM's recipient has no device yet.
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "waiting").increment(1);
            return Outcome::release(now_ms() + retry_after.as_millis() as i64, &message);
        }
        _ if failure.is_outage() && outage.confirms(&failure, delivery).await => {
            // Uses up no try: the workers pause until a probe finds the homeserver again.
            outage.begin(&failure, delivery);
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "paused").increment(1);
            return Outcome::release(now_ms(), &failure.to_string());
        }
        _ if attempts >= config.max_attempts => {
            crate::base::i18n::t!(
                language,
                "delivery-gave-up",
                attempts = attempts,
                error = shown_failure(language, &failure)
            )
        }
        _ => {
            let delay = retry_after_of(&failure).unwrap_or_else(|| backoff(attempts));
            tracing::debug!(%failure, delay_ms = delay.as_millis() as u64, "delivery will be retried");
            metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "retried").increment(1);
            return Outcome::retry(now_ms() + delay.as_millis() as i64, &failure.to_string());
        }
    };
    tracing::info!(%reason, broadcast = %claim.broadcast_id, user = %claim.user_id, "delivery failed");
    metrics::counter!("matrix_broadcast_deliveries_total", "outcome" => "failed").increment(1);
    Outcome::end(DeliveryState::Failed, &reason)
}

/// Whether the homeserver is down, as the workers see it: the first delivery that meets an
/// outage pauses them all and starts one probe, which resumes them when the homeserver answers
/// again. The log says so once each way.
#[derive(Default)]
pub struct Outage {
    down: AtomicBool,
    over: Notify,
}

impl Outage {
    /// A delivery met an outage: the first report pauses the workers and starts the probe.
    fn begin(self: &Arc<Self>, error: &MatrixError, delivery: &Delivery) {
        delivery.health.down(error);
        if self.down.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(%error, "the homeserver cannot be reached: deliveries are paused until it answers again");
        tokio::spawn(self.clone().probe(delivery.rooms.clone(), delivery.health.clone()));
    }

    /// Whether `error`, met by one delivery, is an outage of the homeserver: the workers are
    /// paused already, or one probe cannot reach it either (then the pause begins). A 5xx while
    /// the probe gets an answer is that delivery's own error (a dead remote server behind an
    /// invite), retried with backoff like any other, so that it cannot pause everyone.
    async fn confirms(self: &Arc<Self>, error: &MatrixError, delivery: &Delivery) -> bool {
        if !self.down.load(Ordering::SeqCst) {
            match delivery.rooms.probe().await {
                Err(probed) if probed.is_outage() => {}
                _ => return false,
            }
        }
        self.begin(error, delivery);
        true
    }

    /// Asks the homeserver something cheap, with backoff, until it answers.
    async fn probe(self: Arc<Self>, rooms: Arc<Rooms>, health: Arc<HomeserverHealth>) {
        let mut delay = PROBE_FIRST_DELAY;
        loop {
            tokio::time::sleep(delay).await;
            match rooms.probe().await {
                Err(error) if error.is_outage() => delay = (delay * 2).min(PROBE_MAX_DELAY),
                _ => break,
            }
        }
        self.down.store(false, Ordering::SeqCst);
        health.up();
        tracing::info!("the homeserver answers again: deliveries resume");
        self.over.notify_waiters();
    }

    /// Returns at once while the homeserver is up; otherwise when the outage is over or `stopped`.
    async fn wait_until_over(&self, stopped: &mut watch::Receiver<bool>) {
        while self.down.load(Ordering::SeqCst) && !*stopped.borrow() {
            tokio::select! {
                _ = self.over.notified() => {}
                // In case the wake-up came between the check and the wait.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
        }
    }
}

fn retry_after_of(error: &MatrixError) -> Option<Duration> {
    match error {
        MatrixError::Transient { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// Exponential backoff with full jitter: up to 1 s, 2 s, 4 s, … capped at five minutes.
pub fn backoff(attempts: u32) -> Duration {
    let ceiling =
        Duration::from_secs(1).saturating_mul(1 << attempts.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let millis = rand::thread_rng().gen_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64);
    Duration::from_millis(millis)
}

/// A failure as a person reads it in `!bc status`, in `language`.
fn human_reason(language: Language, error: &MatrixError) -> String {
    match error.errcode() {
        Some("M_FORBIDDEN") => crate::base::i18n::t!(language, "delivery-refused", error = error.to_string()),
        _ => shown_failure(language, error),
    }
}

/// A failure as it is shown inside a reason: the homeserver's own words, or ours in `language`
/// (a copy that waited for its recipient's first device).
fn shown_failure(language: Language, error: &MatrixError) -> String {
    crate::base::e2ee::rooms::shown_reason(language, &error.to_string())
}

/// Sends the personalised copy of `broadcast` for `claim`, as the bot or the broadcast's persona
/// (into that one's DM); returns where it went.
async fn send(
    delivery: &Delivery,
    broadcast: &Broadcast,
    claim: &Claim,
) -> Result<(Dm, OwnedEventId), DmError> {
    let rooms = &delivery.rooms;
    let copy = personalise(rooms.hs(), &broadcast.message, &claim.user_id, &claim.displayname).await?;
    let txn = transaction_id(broadcast.id, &claim.user_id);
    let persona = broadcast.options.persona.as_deref();
    rooms.send_copy(persona, &claim.user_id, claim.dm.clone(), &txn, &copy).await
}

/// The `bot_state` key that records that the admins were told about encrypted DMs.
const ENCRYPTED_DMS_TOLD: &str = "told_encrypted_dms";

/// Tells the admins, once ever, in the control room of the broadcast that found it, that the
/// homeserver makes the bot's DMs encrypted, and what to change.
async fn tell_encrypted_dms(delivery: &Delivery, broadcast: &Broadcast) -> Result<(), StoreError> {
    if !delivery.rooms.store.first_time(ENCRYPTED_DMS_TOLD).await? {
        return Ok(());
    }
    let text = crate::base::i18n::t!(delivery.rooms.language(), "delivery-encrypted-dms");
    let txn = OwnedTransactionId::from(format!("{ENCRYPTED_DMS_TOLD}-{}", broadcast.id.0));
    post_notice(delivery.rooms.hs(), &broadcast.control_room_id, &txn, &text).await;
    Ok(())
}

#[cfg(test)]
pub mod testing;
#[cfg(test)]
mod tests;
