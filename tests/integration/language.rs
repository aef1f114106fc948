//! Issue 15: the bot speaks the config's language from beginning to end, against real Synapse:
//! a preview, the progress summary, `!bc status`, `!bc help send`, a recipient's stop word and
//! its confirmation, and a relayed reply's thread title. The same test in English and German.

use serde_json::Value;

use crate::harness::{TestEnv, TestUser};

/// What the bot is expected to say, in one language.
struct Words {
    code: &'static str,
    preview: [&'static str; 2],
    summary: &'static str,
    status: [&'static str; 2],
    help_send: [&'static str; 2],
    stop: &'static str,
    stop_confirmation: &'static str,
    thread_title: &'static str,
}

const ENGLISH: Words = Words {
    code: "en",
    preview: ["**Preview of #1 «Survey»**", "2 recipients"],
    summary: "finished",
    status: ["- delivered: 2", "- failed: 0"],
    help_send: ["Usage", "--name"],
    stop: "stop",
    stop_confirmation: "You will get no more broadcasts from here. Write `start`",
    thread_title: "Replies from “Bob Builder” (@bob:test.local) to «Survey» #1",
};

const GERMAN: Words = Words {
    code: "de",
    preview: ["**Vorschau von #1 «Survey»**", "2 Empfänger"],
    summary: "beendet",
    status: ["- zugestellt: 2", "- fehlgeschlagen: 0"],
    help_send: ["Aufruf", "Bereitet eine Rundsendung vor"],
    stop: "stopp",
    stop_confirmation: "Sie erhalten von hier keine Rundsendungen mehr. Schreiben Sie `start`",
    thread_title: "Antworten von „Bob Builder“ (@bob:test.local) auf »Survey« #1",
};

/// The event ID of the bot's message in `room` containing `text`.
fn event_with(events: &[Value], bot: &str, text: &str) -> Option<String> {
    events.iter().find_map(|event| {
        let body = event["content"]["body"].as_str()?;
        (event["sender"] == bot && body.contains(text))
            .then(|| event["event_id"].as_str().unwrap().to_owned())
    })
}

async fn speaks(words: &Words) {
    // A preview for any audience: confirm_above 0.
    let config = format!("language: {}\nbroadcast:\n    confirm_above: 0\n", words.code);
    let env = TestEnv::start_with(&config).await;
    let bot = env.bot_id();
    let (admin, root) = (env.user("admin").await, env.server_admin().await);
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    bob.set_displayname("Bob Builder").await;
    let room = env.control_room(&admin).await;
    let command = admin
        .send_text(&room, "!bc send @alice:test.local @bob:test.local --name Survey\nHow was the party?")
        .await;
    let preview = admin.wait_for_answer(&room, &bot, &command).await;
    for text in words.preview {
        assert!(preview.body.contains(text), "the preview says {text:?}: {}", preview.body);
    }
    let preview_event = event_with(&admin.events(&room).await, &bot, words.preview[0]).expect("the preview");
    admin.react(&room, &preview_event, "✅").await;
    let summary = admin.wait_for_progress_saying(&room, &bot, words.summary).await;
    assert!(summary.contains(words.summary), "{summary}");

    let status = admin.send_text(&room, "!bc status #1").await;
    let status = admin.wait_for_answer(&room, &bot, &status).await;
    for text in words.status {
        assert!(status.body.contains(text), "!bc status says {text:?}: {}", status.body);
    }
    let help = admin.send_text(&room, "!bc help send").await;
    let help = admin.wait_for_answer(&room, &bot, &help).await;
    for text in words.help_send {
        assert!(help.body.contains(text), "!bc help send says {text:?}: {}", help.body);
    }

    let census = root.dm_census(&bot, &[&room]).await;
    let dm_of = |user: &TestUser| {
        census.iter().find(|dm| dm.others.contains(&user.user_id)).expect("a DM").room_id.clone()
    };
    let (alice_dm, bob_dm) = (dm_of(&alice), dm_of(&bob));
    alice.join(&alice_dm).await;
    alice.send_text(&alice_dm, words.stop).await;
    alice.wait_for_message(&alice_dm, &bot, words.stop_confirmation).await;
    bob.join(&bob_dm).await;
    bob.send_text(&bob_dm, "It was great").await;
    admin.wait_for_message(&room, &bot, words.thread_title).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_speaks_english_from_beginning_to_end() {
    speaks(&ENGLISH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_speaks_german_from_beginning_to_end() {
    speaks(&GERMAN).await;
}
