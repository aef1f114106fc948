//! The bot's tokens never reach its log (issue 13): the real binary, logging everything at
//! `debug` (its own lines and those of matrix-sdk, the HTTP client and server), goes through a
//! broadcast, a reply and the commands; its whole log output holds neither the `as_token` nor
//! the `hs_token`.

use std::process::Stdio;

use crate::harness::{wait_for, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_log_at_debug_holds_neither_token() {
    let mut env = TestEnv::start().await;
    env.stop_bot().await.expect("stop the in-process bot");
    let dir = tempfile::tempdir().unwrap();
    let config = env.binary_config(dir.path());
    let log_path = dir.path().join("bot.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = crate::harness::binary::spawn_logging(&config, "debug", Stdio::from(log));
    let bot = env.bot_id();
    let (admin, alice) = (env.user("admin").await, env.user("alice").await);
    let room = env.control_room(&admin).await;
    let command = admin.send_text(&room, &format!("!bc send {} --yes\nHello", alice.user_id)).await;
    admin.wait_for_answer(&room, &bot, &command).await;
    admin.wait_for_finished(&room, &bot).await;
    let dm = wait_for("alice's invite", || async {
        let (_, sync) = alice.call(reqwest::Method::GET, "/sync?timeout=0", None).await;
        sync["rooms"]["invite"].as_object().and_then(|invites| invites.keys().next().cloned())
    })
    .await;
    alice.join(&dm).await;
    alice.send_text(&dm, "Thanks!").await;
    admin.wait_for_message(&room, &bot, "Thanks!").await;
    let status = admin.send_text(&room, "!bc status #1").await;
    admin.wait_for_answer(&room, &bot, &status).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        text.contains("listening for the homeserver") && text.contains("broadcast started"),
        "a whole log"
    );
    assert!(text.lines().count() > 100, "debug lines of every crate: {} lines", text.lines().count());
    let tokens =
        [("as_token", &env.config.appservice.as_token), ("hs_token", &env.config.appservice.hs_token)];
    for (name, token) in tokens {
        let found: Vec<&str> = text.lines().filter(|line| line.contains(token.as_str())).take(3).collect();
        assert!(found.is_empty(), "the {name} is in the log: {found:#?}");
    }
}
