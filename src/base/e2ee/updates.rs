//! What an appservice transaction carries for the bot's device besides room events:
//! to-device messages (MSC2409, `de.sorunome.msc2409.to_device`), and device-list changes and
//! one-time-key counts (MSC3202, `org.matrix.msc3202.*`). Read without touching anything, so
//! that it can be tested and fuzzed like the rest of the transaction.

use std::collections::BTreeMap;

use matrix_sdk_crypto::EncryptionSyncChanges;
use ruma::{
    api::client::sync::sync_events::DeviceLists, events::AnyToDeviceEvent, serde::Raw, DeviceId,
    OneTimeKeyAlgorithm, OwnedUserId, UInt, UserId,
};
use serde_json::Value;

/// The to-device messages of a transaction.
const TO_DEVICE: &str = "de.sorunome.msc2409.to_device";
/// Users whose devices changed or who left every shared room.
const DEVICE_LISTS: &str = "org.matrix.msc3202.device_lists";
/// One-time-key counts per user and device (Synapse sends both spellings).
const KEY_COUNTS: [&str; 2] =
    ["org.matrix.msc3202.device_one_time_keys_count", "org.matrix.msc3202.device_one_time_key_counts"];
/// Fallback key types not used yet, per user and device.
const FALLBACK_KEYS: &str = "org.matrix.msc3202.device_unused_fallback_key_types";

/// What one transaction brought for the bot's device.
#[derive(Debug, Default)]
pub struct DeviceUpdates {
    pub to_device: Vec<Raw<AnyToDeviceEvent>>,
    pub device_lists: DeviceLists,
    pub key_counts: BTreeMap<OneTimeKeyAlgorithm, UInt>,
    pub fallback_keys: Option<Vec<OneTimeKeyAlgorithm>>,
}

impl DeviceUpdates {
    /// The parts of `body` meant for `bot`'s `device`; messages for other users or devices
    /// (personas, the bot's other logins) are left out.
    pub fn of(body: &Value, bot: &UserId, device: &DeviceId) -> DeviceUpdates {
        let for_device = |message: &&Value| {
            message["to_user_id"] == bot.as_str() && message["to_device_id"] == device.as_str()
        };
        let to_device = array(&body[TO_DEVICE])
            .iter()
            .filter(for_device)
            .filter_map(|message| serde_json::from_value::<Raw<AnyToDeviceEvent>>(message.clone()).ok())
            .collect();
        let lists = &body[DEVICE_LISTS];
        let mut device_lists = DeviceLists::new();
        device_lists.changed = users(&lists["changed"]);
        device_lists.left = users(&lists["left"]);
        let ours = |key: &str| body[key][bot.as_str()][device.as_str()].clone();
        let key_counts =
            KEY_COUNTS.iter().find_map(|key| serde_json::from_value(ours(key)).ok()).unwrap_or_default();
        let fallback_keys = serde_json::from_value(ours(FALLBACK_KEYS)).ok();
        DeviceUpdates { to_device, device_lists, key_counts, fallback_keys }
    }

    /// Whether there is nothing to tell the machine.
    pub fn is_empty(&self) -> bool {
        self.to_device.is_empty()
            && self.device_lists.changed.is_empty()
            && self.device_lists.left.is_empty()
            && self.key_counts.is_empty()
            && self.fallback_keys.is_none()
    }

    /// The machine's view of these updates.
    pub fn changes(&self) -> EncryptionSyncChanges<'_> {
        EncryptionSyncChanges {
            to_device_events: self.to_device.clone(),
            changed_devices: &self.device_lists,
            one_time_keys_counts: &self.key_counts,
            unused_fallback_keys: self.fallback_keys.as_deref(),
            next_batch_token: None,
        }
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn users(value: &Value) -> Vec<OwnedUserId> {
    array(value).iter().filter_map(|user| UserId::parse(user.as_str()?).ok()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_what_is_meant_for_the_bots_device_is_taken() {
        let bot = ruma::user_id!("@broadcast:x.org");
        let device = ruma::device_id!("BROADCAST");
        let message = |user: &str, device: &str| {
            json!({ "type": "m.room.encrypted", "sender": "@a:x.org", "to_user_id": user,
                    "to_device_id": device, "content": { "algorithm": "m.olm.v1.curve25519-aes-sha2" } })
        };
        let body = json!({
            "events": [],
            TO_DEVICE: [message("@broadcast:x.org", "BROADCAST"), message("@broadcast_hr:x.org", "HR"),
                        message("@broadcast:x.org", "OTHER")],
            DEVICE_LISTS: { "changed": ["@a:x.org", "not a user"], "left": ["@b:x.org"] },
            KEY_COUNTS[0]: { "@broadcast:x.org": { "BROADCAST": { "signed_curve25519": 7 } } },
            FALLBACK_KEYS: { "@broadcast:x.org": { "BROADCAST": ["signed_curve25519"] } },
        });
        let updates = DeviceUpdates::of(&body, bot, device);
        assert_eq!(updates.to_device.len(), 1);
        assert_eq!(updates.device_lists.changed, [ruma::owned_user_id!("@a:x.org")]);
        assert_eq!(updates.device_lists.left, [ruma::owned_user_id!("@b:x.org")]);
        assert_eq!(updates.key_counts[&OneTimeKeyAlgorithm::SignedCurve25519], UInt::from(7u32));
        assert_eq!(updates.fallback_keys, Some(vec![OneTimeKeyAlgorithm::SignedCurve25519]));
        assert!(!updates.is_empty());
    }

    #[test]
    fn a_plain_transaction_brings_nothing() {
        let bot = ruma::user_id!("@broadcast:x.org");
        for body in [json!({ "events": [] }), json!([]), json!({ TO_DEVICE: 3, DEVICE_LISTS: "x" })] {
            assert!(DeviceUpdates::of(&body, bot, ruma::device_id!("D")).is_empty(), "{body}");
        }
    }
}
