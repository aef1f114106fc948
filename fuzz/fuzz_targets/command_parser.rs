//! Command lines as typed in a control room: splitting into words and the clap parser, with
//! the answer to a mistake (usage and a caret under the bad word). Nothing may panic, every word
//! lies inside the line, and the answer to a mistake stays short whatever the line's length
//! (the line is shown around the caret, clap's quote of the bad value shortened).
#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_broadcast::edge::commands::{self, parse};

/// The most an answer to a mistake may take: a headline and tips of at most 300 characters, the
/// line shown around the caret (about 100), and the usage.
const ANSWER_BYTES: usize = 4_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let chars = text.chars().count();
    if let Ok(words) = parse::split_words(text) {
        for word in &words {
            assert!(word.start + word.len <= chars, "{word:?} lies outside a line of {chars} characters");
        }
    }
    // As typed (the fuzzer finds the `!bc` prefix itself), and as a command for sure.
    for line in [text.to_owned(), format!("!bc {text}")] {
        let line = line.lines().next().unwrap_or("");
        if let Err(answer) = commands::parse_command("!bc", line) {
            assert!(!answer.ok);
            assert!(
                answer.markdown.len() <= ANSWER_BYTES,
                "an answer of {} bytes to a line of {} bytes",
                answer.markdown.len(),
                line.len()
            );
        }
    }
    let name = text.split_whitespace().next().unwrap_or("");
    commands::help("!bc", Some(name));
});
