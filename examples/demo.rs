//! `scripts/demo`: a throwaway Synapse, the bot, a space of people and one broadcast, as an
//! admin would send it from Element. Prints what each person received and the final status,
//! then stops everything — or, with `--keep`, keeps running and prints how to log in.

#[allow(dead_code)]
#[path = "../tests/integration/harness/mod.rs"]
mod harness;

use harness::{client::DmRoom, TestEnv, TestUser};

const MESSAGE: &str = "Hello {displayname}, welcome to **Example Corp**! Reply here if you have questions.";

#[tokio::main]
async fn main() {
    let keep = std::env::args().any(|arg| arg == "--keep");
    println!("Starting a throwaway Synapse and matrix-broadcast …");
    let env = TestEnv::start().await;
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

    let command = format!("!bc send {space} --yes --name Welcome\n{MESSAGE}");
    println!("admin types:\n    {}\n", command.replace('\n', "\n    "));
    let sent = admin.send_text(&room, &command).await;
    let answer = admin.wait_for_answer(&room, &bot, &sent).await;
    println!("bot answers {} {}", answer.reaction, answer.body);
    let summary = admin.wait_for_finished(&room, &bot).await;
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
