//! The requests of end-to-end encryption, as the bot's crypto state machine asks for them: key
//! upload, query and claim, to-device messages and cross-signing. [`super::Homeserver::crypto`]
//! sends them from the bot's device; what they mean is the `e2ee` module's business.

use ruma::api::client::{
    keys::{claim_keys, get_keys, upload_keys, upload_signatures, upload_signing_keys},
    to_device::send_event_to_device,
};

/// One request of the bot's crypto state machine.
#[derive(Debug, Clone)]
pub enum CryptoRequest {
    KeysUpload(upload_keys::v3::Request),
    KeysQuery(get_keys::v3::Request),
    KeysClaim(claim_keys::v3::Request),
    ToDevice(send_event_to_device::v3::Request),
    SigningKeysUpload(upload_signing_keys::v3::Request),
    SignaturesUpload(upload_signatures::v3::Request),
}

/// The homeserver's answer to a [`CryptoRequest`], of the same kind.
#[derive(Debug, Clone)]
pub enum CryptoResponse {
    KeysUpload(upload_keys::v3::Response),
    KeysQuery(get_keys::v3::Response),
    KeysClaim(claim_keys::v3::Response),
    ToDevice(send_event_to_device::v3::Response),
    SigningKeysUpload(upload_signing_keys::v3::Response),
    SignaturesUpload(upload_signatures::v3::Response),
}

impl CryptoRequest {
    /// The request's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CryptoRequest::KeysUpload(_) => "keys_upload",
            CryptoRequest::KeysQuery(_) => "keys_query",
            CryptoRequest::KeysClaim(_) => "keys_claim",
            CryptoRequest::ToDevice(_) => "to_device",
            CryptoRequest::SigningKeysUpload(_) => "signing_keys_upload",
            CryptoRequest::SignaturesUpload(_) => "signatures_upload",
        }
    }
}
