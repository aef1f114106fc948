//! A broadcast's copy for one recipient: what it says for them, and sending it into their DM
//! with its sender. The delivery workers and the follow-ups reach the homeserver through here.

use ruma::{OwnedEventId, TransactionId, UserId};

use crate::{
    base::{
        matrix::{send_json, Homeserver, MatrixError},
        message::StoredMessage,
        store::DmRoom,
    },
    rooms::{
        dm::{Dm, DmError},
        senders::Sender,
        Rooms,
    },
};

/// `message` for `user`: `{displayname}` and the like filled in. The display name the queue
/// recorded (`seen`, from the audience's listing) is used when there is one; else it is asked of
/// the homeserver, only when the message needs it.
pub async fn personalise(
    homeserver: &dyn Homeserver,
    message: &StoredMessage,
    user: &UserId,
    seen: &Option<String>,
) -> Result<StoredMessage, MatrixError> {
    let displayname = match (message.needs_displayname(), seen) {
        (false, _) => None,
        (true, Some(seen)) => Some(seen.clone()).filter(|name| !name.is_empty()),
        (true, None) => homeserver.displayname(user).await?,
    };
    Ok(message.personalised(user, displayname.as_deref()))
}

impl Rooms {
    /// Ensures the DM of `user` with the bot (`persona` `None`) or a persona (`seen`: that DM as
    /// the queue read it moments ago) and sends `copy` into it under `txn`; returns where it
    /// went. A message the homeserver refuses into a DM the sender already had (the recipient
    /// left, or removed the sender, before the store heard of it) is sent once more after the DM
    /// was checked with the homeserver: re-invited, or replaced.
    pub async fn send_copy(
        &self,
        persona: Option<&str>,
        user: &UserId,
        seen: Option<DmRoom>,
        txn: &TransactionId,
        copy: &StoredMessage,
    ) -> Result<(Dm, OwnedEventId), DmError> {
        let had_dm = seen.as_ref().is_some_and(|dm| dm.state == crate::base::store::DmState::Ready);
        let Sender { homeserver, dms } = self.sender(persona).await?;
        let dm = dms.ensure_seen(user, seen).await?;
        let dm = self.encrypted_if_asked(persona, dm).await?;
        match send_json(homeserver, &dm.room, txn, &copy.event_type, &copy.content).await {
            Ok(event) => Ok((dm, event)),
            Err(error) if had_dm && error.errcode() == Some("M_FORBIDDEN") => {
                tracing::info!(%error, room = %dm.room, "a message into a DM was refused; checking the DM");
                dms.refused(&dm.room, user).await?;
                let dm = dms.ensure(user).await?;
                let event = send_json(homeserver, &dm.room, txn, &copy.event_type, &copy.content).await?;
                Ok((dm, event))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// `dm`, turned encrypted first when it is the bot's (`persona` `None`), plain, and
    /// `encryption.upgrade_dms` asks for it.
    async fn encrypted_if_asked(&self, persona: Option<&str>, dm: Dm) -> Result<Dm, DmError> {
        let Some(crypto) = &self.crypto else { return Ok(dm) };
        if dm.encrypted || !self.upgrade_dms || persona.is_some() {
            return Ok(dm);
        }
        crypto.upgrade(&dm.room).await.map_err(MatrixError::from)?;
        self.store.dm_encrypted(&dm.room).await?;
        tracing::info!(room = %dm.room, "a plain DM was made encrypted (encryption.upgrade_dms)");
        Ok(Dm { encrypted: true, ..dm })
    }

    /// Asks the homeserver something cheap (the bot's profile, which names no device: the probe
    /// runs before the device exists): whether it answers.
    pub async fn probe(&self) -> Result<(), MatrixError> {
        self.homeserver.profile(&self.bot).await.map(|_| ())
    }
}
