//! Who may address what: rooms and spaces where a broadcaster has power level 50, everything for an admin; the rooms a checked audience reaches.

use super::*;

/// The rooms an audience reaches, and those `--recursive` would add but the sender may not
/// address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rooms {
    /// Each room with the name to show it by (the word typed, or the ID of a room below it).
    pub reached: Vec<(OwnedRoomId, String)>,
    /// Rooms of a space's hierarchy left out: below `admin`, the sender is not a member there
    /// with power level 50.
    pub left_out: Vec<OwnedRoomId>,
}

/// The rooms an audience reaches: each room typed and, with `recursive`, every room of its
/// space hierarchy that `sender` (of `level`) may address as well (the typed rooms were checked
/// by [`authorize`] when the command came).
pub async fn rooms(
    homeserver: &dyn Homeserver,
    audience: &Authorized,
    recursive: bool,
    sender: &UserId,
    level: Level,
) -> Result<Rooms, AudienceError> {
    let mut rooms = Rooms::default();
    for (room_id, typed) in audience.rooms() {
        rooms.reached.push((room_id.clone(), typed.to_owned()));
        if !recursive {
            continue;
        }
        let below = homeserver.space_rooms(&room_id).await.map_err(|error| {
            AudienceError::new(
                "audience-cannot-read-space",
                &[("room", typed), ("error", &error_text(&error))],
            )
        })?;
        for child in below {
            if level >= Level::Admin
                || may_address(homeserver, &child, sender).await.is_ok_and(|(ok, _, _)| ok)
            {
                rooms.reached.push((child.clone(), child.to_string()));
            } else {
                rooms.left_out.push(child);
            }
        }
    }
    Ok(rooms)
}

/// Checks that `sender` (of `level`) may address every target: admins anything; broadcasters
/// users, and rooms or spaces where they are joined with power level 50 or more. Returns the
/// targets with each alias resolved to the room that was checked: the broadcast keeps those, and
/// nothing looks the alias up again (its server could answer another room the next time).
pub async fn authorize(
    homeserver: &dyn Homeserver,
    sender: &UserId,
    level: Level,
    targets: &[Target],
) -> Result<Authorized, AudienceError> {
    let mut checked = Vec::with_capacity(targets.len());
    for target in targets {
        match target {
            Target::Room(room) => {
                let room_id = room_id(homeserver, room).await?;
                if level < Level::Admin {
                    may_address_room(homeserver, sender, room, &room_id).await?;
                }
                checked.push(Target::Room(room_id.into()));
            }
            _ if level >= Level::Admin => checked.push(target.clone()),
            Target::User(_) => checked.push(target.clone()),
            Target::Server => return Err(AudienceError::new("audience-server-needs-admin", &[])),
            Target::Search(text) => {
                return Err(AudienceError::new("audience-search-needs-admin", &[("text", text)]))
            }
        }
    }
    Ok(Authorized(checked))
}

/// Refuses a broadcaster who may not address `room_id` (typed as `room`), saying why.
async fn may_address_room(
    homeserver: &dyn Homeserver,
    sender: &UserId,
    room: &OwnedRoomOrAliasId,
    room_id: &RoomId,
) -> Result<(), AudienceError> {
    let (allowed, joined, power) = may_address(homeserver, room_id, sender).await.map_err(|error| {
        AudienceError::new(
            "audience-cannot-see-room",
            &[("room", room.as_str()), ("error", &error_text(&error))],
        )
    })?;
    if !allowed {
        return Err(AudienceError::new(
            "audience-power-too-low",
            &[
                ("required", &REQUIRED_POWER_LEVEL.to_string()),
                ("room", room.as_str()),
                ("power", &power.to_string()),
                ("member", if joined { "yes" } else { "no" }),
            ],
        ));
    }
    Ok(())
}

/// Whether a broadcaster may address the members of `room`: joined there with power level 50 or
/// more. Also returns whether they are joined and their power level, to say why not.
async fn may_address(
    homeserver: &dyn Homeserver,
    room: &RoomId,
    sender: &UserId,
) -> Result<(bool, bool, i64), MatrixError> {
    let joined = membership(homeserver, room, sender).await? == Some(MembershipState::Join);
    let power = power_level(homeserver, room, sender).await?;
    Ok((joined && power >= REQUIRED_POWER_LEVEL, joined, power))
}

/// `user`'s power level in `room` (users_default when not listed; 0 without power levels).
async fn power_level(homeserver: &dyn Homeserver, room: &RoomId, user: &UserId) -> Result<i64, MatrixError> {
    let levels = homeserver.state(room, StateEventType::RoomPowerLevels, "").await?;
    let Some(levels) = levels else { return Ok(0) };
    let as_int = |value: &serde_json::Value| value.as_i64().or_else(|| value.as_str()?.parse().ok());
    if let Some(level) = levels.get("users").and_then(|users| users.get(user.as_str())).and_then(as_int) {
        return Ok(level);
    }
    // Room version 12: creators have unlimited power and are not listed in the power levels.
    // In older rooms a creator has only the power the power levels give them.
    let creation = homeserver.room_creation(room).await?;
    if creation.creators_are_privileged() && creation.creators.iter().any(|creator| creator == user) {
        return Ok(i64::MAX);
    }
    Ok(levels.get("users_default").and_then(as_int).unwrap_or(0))
}
