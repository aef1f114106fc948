//! Who writes into DMs: the bot and the personas of the config, each with a homeserver handle
//! acting as it and DMs of its own.

use std::{collections::BTreeMap, sync::Arc};

use ruma::UserId;
use tokio::sync::{watch, Notify, OnceCell};

use crate::{
    base::{
        config::{Config, PersonaConfig, RecipientLanguage},
        i18n::{t, Language},
        matrix::{Homeserver, MatrixError},
        store::{Claim, Store, StoreError},
    },
    rooms::dm::{recipient_language, Dms, Languages},
};

/// The bot and its personas, as they write into their DMs.
pub struct Senders {
    /// The homeserver, acting as the bot.
    homeserver: Arc<dyn Homeserver>,
    /// The bot's DMs with recipients.
    pub dms: Dms,
    /// The personas of `personas:`, by name, each with its own DMs.
    personas: BTreeMap<String, Persona>,
    store: Store,
    languages: Languages,
}

impl Senders {
    /// The bot (acting through `homeserver`) and the personas of `config`.
    pub fn new(config: &Config, store: &Store, homeserver: Arc<dyn Homeserver>) -> Self {
        let languages = languages_of(config);
        let bot = homeserver.bot().to_owned();
        let dms = Dms::new(store.clone(), homeserver.clone(), bot).speaking(languages);
        let personas = Persona::all_of(config, store, homeserver.as_ref());
        Self { homeserver, dms, personas, store: store.clone(), languages }
    }

    /// The same senders, the bot's new DMs encrypted when `encrypted`.
    pub fn encrypting_new_dms(self, encrypted: bool) -> Self {
        Self { dms: self.dms.with_encryption(encrypted), ..self }
    }

    /// The persona `name` of the config, if there is one.
    pub fn persona(&self, name: &str) -> Option<&Persona> {
        self.personas.get(name)
    }

    /// The personas of the config.
    pub fn personas(&self) -> impl Iterator<Item = &Persona> {
        self.personas.values()
    }

    /// The DMs of the bot (`persona` `None`) or of a persona of the config.
    pub fn dms_of(&self, persona: Option<&str>) -> Option<&Dms> {
        match persona {
            None => Some(&self.dms),
            Some(name) => self.persona(name).map(|persona| &persona.dms),
        }
    }

    /// Who writes as the bot (`persona` `None`) or as a persona of the config; a persona is
    /// registered, logged in and given its profile first, once (see [`Persona::ready`]).
    pub async fn sender(&self, persona: Option<&str>) -> Result<Sender<'_>, MatrixError> {
        let Some(name) = persona else {
            return Ok(Sender { homeserver: self.homeserver.as_ref(), dms: &self.dms });
        };
        let persona = self.persona(name).ok_or_else(|| {
            MatrixError::internal(t!(self.languages.config, "context-persona-gone", name = name))
        })?;
        persona.ready().await?;
        Ok(Sender { homeserver: persona.homeserver.as_ref(), dms: &persona.dms })
    }

    /// The language of what the bot writes to the recipient `user`: the one they chose (with
    /// `broadcast.recipient_language: user`), else the config's.
    pub async fn recipient_language(&self, user: &UserId) -> Language {
        recipient_language(&self.store, self.languages, user).await
    }

    /// Records the intents to create the DMs a batch of claims needs, with the bot's DMs and
    /// with each persona's (see [`Dms::begin_for`]).
    pub async fn begin_dms_for(&self, claims: &mut [Claim]) -> Result<(), StoreError> {
        self.dms.begin_for(claims).await?;
        for persona in self.personas.values() {
            if claims.iter().any(|claim| claim.persona.as_deref() == Some(persona.name.as_str())) {
                persona.dms.begin_for(claims).await?;
            }
        }
        Ok(())
    }

    /// Forgets the DMs recorded for `claims` (by [`Senders::begin_dms_for`]) and never asked of
    /// the homeserver: the claims go back to the queue untried.
    pub async fn abandon_untried_dms(&self, claims: &[Claim]) -> Result<(), StoreError> {
        for claim in claims {
            if let (Some(dm), Some(dms)) = (&claim.dm, self.dms_of(claim.persona.as_deref())) {
                dms.abandon_untried(dm).await?;
            }
        }
        Ok(())
    }
}

/// The languages of a config: its own, and whether recipients may choose theirs.
fn languages_of(config: &Config) -> Languages {
    Languages {
        config: config.language,
        chosen_by_recipients: config.broadcast.recipient_language == RecipientLanguage::User,
    }
}

/// The bot or a persona, as it writes into its DMs.
pub struct Sender<'a> {
    pub homeserver: &'a dyn Homeserver,
    pub dms: &'a Dms,
}

/// A persona of the bot (`personas:` in the config): a user of the bot's namespace that
/// broadcasts may be sent as, with a homeserver handle acting as it and DMs of its own. It is
/// registered, logs in its device and gets its profile the first time it is used.
pub struct Persona {
    /// Its name in the config, what `--as` takes.
    pub name: String,
    pub config: PersonaConfig,
    /// The homeserver, acting as the persona from `appservice.device_id`.
    pub homeserver: Arc<dyn Homeserver>,
    pub dms: Dms,
    /// Set once the persona is registered, logged in and has its profile, in this process.
    ready: OnceCell<()>,
    /// Woken when it is ready, for the `m.direct` writer.
    became_ready: Notify,
}

impl Persona {
    /// The personas of `config` (validated: each has a user ID).
    fn all_of(config: &Config, store: &Store, homeserver: &dyn Homeserver) -> BTreeMap<String, Persona> {
        let device = &config.appservice.device_id;
        let personas = config.personas.iter().filter_map(|(name, persona)| {
            let user = config.persona_user_id(name)?;
            let homeserver = homeserver.acting_as(&user, device);
            let dms =
                Dms::for_persona(store.clone(), homeserver.clone(), name).speaking(languages_of(config));
            let persona = Persona {
                name: name.clone(),
                config: persona.clone(),
                homeserver,
                dms,
                ready: OnceCell::new(),
                became_ready: Notify::new(),
            };
            Some((name.clone(), persona))
        });
        personas.collect()
    }

    /// `@<username>:<domain>`.
    pub fn user_id(&self) -> &UserId {
        self.homeserver.bot()
    }

    /// Registers the persona ("already registered" is fine), logs in its device (so that the
    /// homeserver de-duplicates its transaction IDs across restarts) and sets its display name
    /// and avatar: the first time it is used in this process; tried again at the next use when
    /// a step failed.
    pub async fn ready(&self) -> Result<(), MatrixError> {
        self.ready
            .get_or_try_init(|| async {
                self.homeserver.register_bot().await?;
                self.homeserver.ensure_device().await?;
                let (displayname, avatar) = self.config.profile();
                self.homeserver.set_bot_profile(displayname, avatar).await?;
                tracing::info!(persona = %self.name, user = %self.user_id(), "persona registered and logged in");
                self.became_ready.notify_one();
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Rewrites the persona's `m.direct` while its DMs change, until `stopped`; from the moment
    /// it is ready (before, the homeserver may not know the user), or it has DMs that a worker
    /// process made (then it is made ready here too).
    pub async fn run_direct_writer(&self, mut stopped: watch::Receiver<bool>) {
        if !self.ready.initialized() {
            let made_elsewhere = tokio::select! {
                _ = self.became_ready.notified() => false,
                _ = self.dms.until_made_elsewhere() => true,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            if made_elsewhere {
                if let Err(error) = self.ready().await {
                    tracing::warn!(%error, persona = %self.name, "cannot make the persona ready for its m.direct");
                }
            }
        }
        self.dms.run_direct_writer(stopped).await
    }
}

#[cfg(test)]
mod tests {
    use ruma::OwnedUserId;

    use super::*;
    use crate::rooms::testing::{TestRooms, HR_PERSONA};

    fn hr() -> OwnedUserId {
        "@broadcast_hr:example.org".try_into().unwrap()
    }

    #[tokio::test]
    async fn a_persona_is_registered_logged_in_and_given_its_profile_on_first_use_only() {
        let test = TestRooms::with_config(HR_PERSONA).await;
        assert!(test.hs.with(|state| state.registered.is_empty()), "nothing before the first use");
        test.hs.fail_next("register_bot", MatrixError::NetworkFailure("connection refused".into()));
        assert!(test.rooms.sender(Some("hr")).await.is_err(), "a failed registration fails the use");
        for _ in 0..3 {
            let sender = test.rooms.sender(Some("hr")).await.expect("ready");
            assert_eq!(sender.homeserver.bot(), hr(), "acts as the persona");
        }
        let (registered, devices, profile) = test.hs.with(|state| {
            (state.registered.clone(), state.devices.clone(), state.profiles.get(&hr()).cloned().flatten())
        });
        assert_eq!(registered, [hr()], "registered once, tried again after the failure");
        assert_eq!(devices, [(hr(), "BROADCAST".into())], "its own device, logged in once");
        assert_eq!(profile.as_deref(), Some("HR Team"));
        assert_eq!((test.hs.count("set_bot_profile"), test.hs.count("ensure_device")), (1, 1));
        let bot = test.rooms.sender(None).await.unwrap();
        assert_eq!(bot.homeserver.bot(), test.rooms.bot, "None is the bot");
        let error = test.rooms.sender(Some("it")).await.err().expect("no such persona");
        assert!(error.to_string().contains("the persona it is no longer in the config"), "{error}");
    }
}
