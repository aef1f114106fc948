//! Adopting a DM the person opened: the bot invited into a private room with them alone.

use super::*;

impl Dms {
    /// A person invited the bot to a direct chat. When the bot has no DM with them it joins and
    /// uses that room as their DM; an encrypted one it cannot read, so it says so and keeps its
    /// own.
    pub async fn adopt_invited(&self, room: &RoomId, user: &UserId, invite: &EventId) {
        let homeserver = self.homeserver.as_ref();
        match self.store.live_dm(self.persona(), user).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                let reason = crate::base::i18n::t!(self.language_of(user).await, "dm-second-chat");
                if let Err(error) = homeserver.leave(room, Some(reason)).await {
                    tracing::warn!(%error, "cannot decline a second direct chat");
                }
                return;
            }
            Err(error) => return tracing::error!(%error, "cannot look up DMs"),
        }
        if let Err(error) = homeserver.join(&OwnedRoomOrAliasId::from(room.to_owned())).await {
            return tracing::warn!(%error, %user, "cannot join a direct chat");
        }
        match self.is_private_with(room, user).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(%user, %room, "a direct chat that is not private between two was left");
                let reason = crate::base::i18n::t!(self.language_of(user).await, "dm-not-private");
                if let Err(error) = homeserver.leave(room, Some(reason)).await {
                    tracing::warn!(%error, "cannot leave a room that is not a direct chat");
                }
                return;
            }
            Err(error) => return tracing::warn!(%error, "cannot tell who is in a direct chat"),
        }
        let encrypted = match homeserver.room_facts(room).await {
            Ok(facts) if facts.is_encrypted && !self.reads_encrypted => {
                let text = crate::base::i18n::t!(self.language_of(user).await, "dm-encrypted");
                post_notice(homeserver, room, &txn_for("encrypted-dm", invite), &text).await;
                return;
            }
            Ok(facts) => facts.is_encrypted,
            Err(error) => return tracing::warn!(%error, "cannot tell whether a direct chat is encrypted"),
        };
        match self.record_adopted(room, user, encrypted).await {
            Ok(()) => {
                tracing::info!(%user, %room, "adopted a direct chat the recipient opened");
                self.direct_changed();
            }
            Err(error) => tracing::error!(%error, "cannot record an adopted direct chat"),
        }
    }

    /// Whether `room` is closed to others (see [`crate::base::matrix::how_open`]) and has exactly the bot
    /// and `user` in it, joined or invited: a third person invited earlier could join later and
    /// read what the bot sends there.
    async fn is_private_with(&self, room: &RoomId, user: &UserId) -> Result<bool, MatrixError> {
        if self.homeserver.room_facts(room).await?.open.is_some() {
            return Ok(false);
        }
        let members = self.homeserver.room_members(room).await?;
        Ok(members.len() == 2 && members.iter().all(|member| *member == self.bot || member == user))
    }

    async fn record_adopted(&self, room: &RoomId, user: &UserId, encrypted: bool) -> Result<(), StoreError> {
        let nonce = random_token();
        if self.store.begin_dm(self.persona(), user, &nonce).await? {
            self.store.dm_created(&nonce, room, encrypted).await?;
            self.store.set_dm_membership(room, &MembershipState::Join).await?;
        }
        Ok(())
    }
}
