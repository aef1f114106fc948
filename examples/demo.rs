//! `scripts/demo`: a throwaway Synapse, the bot, a space of people and one broadcast, as an
//! admin would send it from Element. Prints what each person received and the final status,
//! then stops everything — or, with `--keep`, keeps running and prints how to log in.
//! `--encrypted`: the same with end-to-end encryption, everyone on an E2EE client, and a reply.
//! `--language de`: the bot speaks German (`language: de`); the broadcast is written in German.

#[allow(dead_code)]
#[path = "../tests/integration/harness/mod.rs"]
mod harness;

use harness::{
    client::DmRoom,
    e2ee::{synapse_holds_text, E2eeUser},
    TestEnv, TestUser,
};

const MESSAGE: &str = "Hello {displayname}, welcome to **Example Corp**! Reply here if you have questions.";
const MESSAGE_DE: &str =
    "Hallo {displayname}, willkommen bei der **Beispiel GmbH**! Antworten Sie hier, wenn Sie Fragen haben.";

/// The value of `--language` (`en` when not given).
fn language() -> String {
    let args: Vec<String> = std::env::args().collect();
    let given = args.iter().position(|arg| arg == "--language").and_then(|at| args.get(at + 1));
    given.cloned().unwrap_or_else(|| "en".to_owned())
}

#[tokio::main]
async fn main() {
    let keep = std::env::args().any(|arg| arg == "--keep");
    if std::env::args().any(|arg| arg == "--encrypted") {
        return encrypted_demo(keep).await;
    }
    let language = language();
    println!("Starting a throwaway Synapse and matrix-broadcast (language: {language}) …");
    let env = TestEnv::start_with(&format!("language: {language}\n")).await;
    let message = if language == "de" { MESSAGE_DE } else { MESSAGE };
    let bot = env.bot_id();
    let admin = env.user("admin").await;
    let root = env.server_admin().await;
    let mut people = Vec::new();
    for (localpart, name) in [("alice", "Alice Liddell"), ("bob", "Bob Builder"), ("carol", "Carol Danvers")]
    {
        let person = env.user(localpart).await;
        person.set_displayname(name).await;
        people.push(person);
    }
    let outsider = env.user("mallory").await;
    let members: Vec<&TestUser> = people.iter().collect();
    let space = env.space(&admin, "company", &members).await;
    println!("Synapse: {}  (server name {})", env.synapse.url, harness::SERVER_NAME);
    println!("Space {space} with admin, alice, bob and carol; mallory is not a member.");
    let room = env.control_room(&admin).await;
    println!("The admin invited {bot} into a private room: it is now a control room.\n");

    let command = format!("!bc send {space} --yes --name Welcome\n{message}");
    println!("admin types:\n    {}\n", command.replace('\n', "\n    "));
    let sent = admin.send_text(&room, &command).await;
    let answer = admin.wait_for_answer(&room, &bot, &sent).await;
    println!("bot answers {} {}", answer.reaction, answer.body);
    let finished = if language == "de" { " beendet" } else { " finished" };
    let summary = admin.wait_for_progress_saying(&room, &bot, finished).await;
    println!("bot's progress message ends: {summary}\n");

    let census = root.dm_census(&bot, &[&room]).await;
    for person in people.iter().chain([&admin, &outsider]) {
        let dms: Vec<&DmRoom> = census.iter().filter(|dm| dm.others.contains(&person.user_id)).collect();
        match dms.as_slice() {
            [] => println!("{:<22} received nothing", person.user_id),
            [dm] => {
                for message in &dm.messages {
                    println!(
                        "{:<22} received in their own DM: {}",
                        person.user_id,
                        message["body"].as_str().unwrap_or("")
                    );
                }
            }
            _ => println!("{:<22} has {} DM rooms (unexpected!)", person.user_id, dms.len()),
        }
    }

    let status = admin.send_text(&room, "!bc status #1").await;
    println!("\nadmin types: !bc status #1\n{}", admin.wait_for_answer(&room, &bot, &status).await.body);
    if language == "de" {
        let alice = &people[0];
        let dm = census.iter().find(|dm| dm.others.contains(&alice.user_id)).expect("alice's DM");
        german_extras(&env, &admin, &room, alice, &dm.room_id).await;
    }

    stop_or_keep(keep, &env).await;
}

/// With `--language de`: the German help of `send`, and a recipient's `stopp`.
async fn german_extras(env: &TestEnv, admin: &TestUser, room: &str, person: &TestUser, dm: &str) {
    let bot = env.bot_id();
    let help = admin.send_text(room, "!bc help send").await;
    println!("\nadmin types: !bc help send\n{}", admin.wait_for_answer(room, &bot, &help).await.body);
    person.join(dm).await;
    person.send_text(dm, "stopp").await;
    let confirmation = person.wait_for_message(dm, &bot, "`start`").await;
    println!("\n{} writes: stopp\nbot answers: {}", person.user_id, confirmation["content"]["body"]);
}

/// Keeps running until Ctrl-C with `--keep`, saying how to log in.
async fn stop_or_keep(keep: bool, env: &TestEnv) {
    if keep {
        println!(
            "\nStill running. Log in with any Matrix client (e.g. Element, custom homeserver {}) as admin, \
             alice, bob or carol, password {:?}. Ctrl-C stops everything.",
            env.synapse.url,
            harness::client::PASSWORD
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    println!("Stopping.");
}

/// `--encrypted`: the bot with end-to-end encryption, the admin and the people on a real E2EE
/// client (matrix-sdk): an encrypted control room, an encrypted broadcast, a decrypted reply.
async fn encrypted_demo(keep: bool) {
    println!("Starting a throwaway Synapse and matrix-broadcast with end-to-end encryption …");
    let env = TestEnv::start_encrypted().await;
    let bot = env.bot_id();
    let admin_account = env.user("admin").await;
    let admin = E2eeUser::login(&env.synapse, &admin_account).await;
    let mut people = Vec::new();
    for localpart in ["alice", "bob"] {
        let account = env.user(localpart).await;
        people.push((E2eeUser::login(&env.synapse, &account).await, account));
    }
    let accounts: Vec<&TestUser> = people.iter().map(|(_, account)| account).collect();
    let space = env.space(&admin_account, "company", &accounts).await;
    println!("Space {space} with admin, alice and bob, each on an end-to-end encrypted client.");
    let room = admin.create_encrypted_room(&[&bot]).await;
    admin.wait_for_decrypted(&room, &bot, "This is now a control room").await;
    println!("The admin invited {bot} into an ENCRYPTED private room: it is now a control room.\n");

    let text = "Quarterly results are out: see the intranet. Questions? Reply here.";
    let command = format!("!bc send {space} --yes --name Results\n{text}");
    println!("admin types (encrypted):\n    {}\n", command.replace('\n', "\n    "));
    admin.send_text(&room, &command).await;
    let summary = admin.wait_for_decrypted(&room, &bot, "finished").await;
    println!("bot's progress message ends: {}\n", summary["content"]["m.new_content"]["body"]);
    for (person, _) in &people {
        let dm = person.dm_with(&bot).await;
        let copy = person.wait_for_decrypted(&dm, &bot, "Quarterly results").await;
        println!("{:<22} decrypted on their device: {}", person.user_id, copy["content"]["body"]);
    }
    println!(
        "Synapse's database holds the text in clear: {}\n",
        synapse_holds_text(&env.synapse, text).await
    );

    let (alice, _) = &people[0];
    alice.send_text(&alice.dm_with(&bot).await, "Thanks! Will there be a Q&A?").await;
    println!("alice replies (encrypted): Thanks! Will there be a Q&A?");
    let relayed = admin.wait_for_decrypted(&room, &bot, "Will there be a Q&A?").await;
    println!("the admin's client decrypts it in the control room's thread: {}", relayed["content"]["body"]);
    admin.send_text(&room, "!bc status #1").await;
    let status = admin.wait_for_decrypted(&room, &bot, "encrypted end to end").await;
    println!("\nadmin types: !bc status #1\n{}", status["content"]["body"].as_str().unwrap_or_default());
    stop_or_keep(keep, &env).await;
}
