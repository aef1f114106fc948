//! Synapse's admin API (`/_synapse/admin/…`), which ruma has no types for.
//!
//! Called with the `as_token` and no `user_id` (there `user_id` is a filter), through the same
//! HTTP client as the rest; failures are classified like every other call. The bot must be a
//! server admin for these; [`MatrixError::is_not_server_admin`] tells that case apart.

use std::time::Duration;

use ruma::{OwnedUserId, RoomId, UserId};
use serde::Deserialize;

use super::{MatrixClient, MatrixError};

/// A local account as the admin user list shows it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AdminUser {
    pub name: OwnedUserId,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default, deserialize_with = "int_or_bool")]
    pub is_guest: bool,
    #[serde(default, deserialize_with = "int_or_bool")]
    pub deactivated: bool,
    #[serde(default)]
    pub displayname: Option<String>,
    /// Present on the single-user answer only: the appservice that registered the account.
    #[serde(default)]
    pub appservice_id: Option<String>,
    #[serde(default)]
    pub last_seen_ts: Option<i64>,
    /// When the account was made, in milliseconds.
    #[serde(default)]
    pub creation_ts: Option<i64>,
}

/// Synapse answers 0/1 on older versions and true/false on newer ones.
fn int_or_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrBool {
        Int(i64),
        Bool(bool),
    }
    Ok(match Option::<IntOrBool>::deserialize(deserializer)? {
        Some(IntOrBool::Int(value)) => value != 0,
        Some(IntOrBool::Bool(value)) => value,
        None => false,
    })
}

#[derive(Debug, Deserialize)]
struct UsersPage {
    users: Vec<AdminUser>,
    #[serde(default)]
    next_token: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct RoomMembers {
    members: Vec<OwnedUserId>,
}

impl MatrixError {
    /// Whether this is Synapse refusing an admin API call because the bot is not a server admin.
    pub fn is_not_server_admin(&self) -> bool {
        matches!(self, MatrixError::Permanent { status: Some(403), .. })
    }
}

impl MatrixClient {
    /// `GET` on the admin API, decoded as `T`.
    async fn admin_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, MatrixError> {
        let url = format!("{}{path}", self.client.homeserver().as_str().trim_end_matches('/'));
        let request = self
            .client
            .http_client()
            .get(url)
            .bearer_auth(&self.as_token)
            .timeout(Duration::from_secs(60))
            .send();
        let result = async {
            let response = request.await.map_err(|error| MatrixError::NetworkFailure(error.to_string()))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body =
                response.bytes().await.map_err(|error| MatrixError::NetworkFailure(error.to_string()))?;
            if !status.is_success() {
                let mut answer = http::Response::builder().status(status.as_u16());
                if let Some(retry_after) = headers.get("retry-after") {
                    answer = answer.header("retry-after", retry_after.as_bytes());
                }
                let answer = answer.body(body.to_vec()).map_err(|error| MatrixError::Permanent {
                    errcode: None,
                    status: Some(status.as_u16()),
                    message: error.to_string(),
                })?;
                let api_error =
                    <ruma::api::error::Error as ruma::api::EndpointError>::from_http_response(answer);
                return Err(MatrixError::from_api_error(&api_error));
            }
            serde_json::from_slice(&body).map_err(|error| MatrixError::Permanent {
                errcode: None,
                status: Some(status.as_u16()),
                message: format!("unexpected answer from {path}: {error}"),
            })
        }
        .await;
        super::client::count_outcome(&result);
        result
    }

    pub(super) async fn admin_users_page_impl(
        &self,
        from: u64,
        limit: u32,
        newest_first: bool,
        name: Option<&str>,
    ) -> Result<(Vec<AdminUser>, Option<u64>), MatrixError> {
        let order = if newest_first { "order_by=creation_ts&dir=b" } else { "order_by=name" };
        let mut path = format!(
            "/_synapse/admin/v2/users?from={from}&limit={limit}&guests=false&deactivated=false&{order}"
        );
        if let Some(name) = name {
            // Synapse matches it anywhere in the user ID or the display name.
            path.push_str(&format!("&name={}", encode(name)));
        }
        let page: UsersPage = self.admin_get(&path).await?;
        let next = page.next_token.and_then(|token| match token {
            serde_json::Value::Number(number) => number.as_u64(),
            serde_json::Value::String(text) => text.parse().ok(),
            _ => None,
        });
        Ok((page.users, next))
    }

    pub(super) async fn admin_user_impl(&self, user: &UserId) -> Result<AdminUser, MatrixError> {
        self.admin_get(&format!("/_synapse/admin/v2/users/{}", encode(user.as_str()))).await
    }

    pub(super) async fn admin_room_members_impl(
        &self,
        room: &RoomId,
    ) -> Result<Vec<OwnedUserId>, MatrixError> {
        let members: RoomMembers =
            self.admin_get(&format!("/_synapse/admin/v1/rooms/{}/members", encode(room.as_str()))).await?;
        Ok(members.members)
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_users_decode_old_and_new_booleans() {
        let old: AdminUser =
            serde_json::from_str(r#"{"name":"@a:b.c","is_guest":0,"deactivated":1,"user_type":null}"#)
                .unwrap();
        let new: AdminUser =
            serde_json::from_str(r#"{"name":"@a:b.c","is_guest":true,"deactivated":false}"#).unwrap();
        assert!(!old.is_guest && old.deactivated);
        assert!(new.is_guest && !new.deactivated);
    }
}
