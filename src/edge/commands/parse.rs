//! Splitting a command line into words and pointing at the word that is wrong.
//!
//! Words are separated by whitespace; "double" or 'single' quotes keep spaces inside a word.
//! Each word remembers where it stands so that an error can draw a caret under it.

/// One word of a command line and its position (in characters) in that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub len: usize,
}

/// A line that could not be split: an unterminated quote at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnclosedQuote {
    pub position: usize,
}

/// Splits `line` into words.
pub fn split_words(line: &str) -> Result<Vec<Word>, UnclosedQuote> {
    let mut words = Vec::new();
    let mut chars = line.chars().enumerate().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut end = start;
        while let Some(&(position, c)) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            end = position + 1;
            if c == '"' || c == '\'' {
                let quote = c;
                loop {
                    match chars.next() {
                        Some((position, c)) if c == quote => {
                            end = position + 1;
                            break;
                        }
                        Some((_, c)) => text.push(c),
                        None => return Err(UnclosedQuote { position }),
                    }
                }
            } else {
                text.push(c);
            }
        }
        words.push(Word { text, start, len: end - start });
    }
    Ok(words)
}

/// The most characters of a line shown above a caret: a longer line is shown around the caret
/// (whatever was typed, the answer must fit into one event).
const SHOWN: usize = 100;

/// `line` and under it a caret line marking `len` characters from `start` (at least one).
pub fn caret(line: &str, start: usize, len: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let len = len.max(1);
    if chars.len() <= SHOWN {
        return format!("{line}\n{}{}", " ".repeat(start), "^".repeat(len));
    }
    let len = len.min(SHOWN / 2);
    let from = start.saturating_sub(SHOWN / 4).min(chars.len());
    let to = (from + SHOWN).min(chars.len());
    let shown: String = chars[from..to].iter().collect();
    let (before, after) = (if from > 0 { "…" } else { "" }, if to < chars.len() { "…" } else { "" });
    let indent = start - from + before.chars().count();
    format!("{before}{shown}{after}\n{}{}", " ".repeat(indent), "^".repeat(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split_words(line).unwrap().into_iter().map(|word| word.text).collect()
    }

    #[test]
    fn splits_on_whitespace_and_keeps_quoted_spaces() {
        assert_eq!(texts("send  #a:b --name \"Hello world\""), ["send", "#a:b", "--name", "Hello world"]);
        assert_eq!(texts("--name='x y'"), ["--name=x y"]);
        assert!(texts("   ").is_empty());
    }

    #[test]
    fn words_know_their_position() {
        let words = split_words("!bc sned x").unwrap();
        assert_eq!(words[1], Word { text: "sned".into(), start: 4, len: 4 });
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let words = split_words("«é» next").unwrap();
        assert_eq!(words[1].start, 4);
    }

    #[test]
    fn unclosed_quote_is_an_error() {
        assert_eq!(split_words("send --name \"oops"), Err(UnclosedQuote { position: 12 }));
    }

    #[test]
    fn caret_marks_the_word() {
        assert_eq!(caret("!bc sned x", 4, 4), "!bc sned x\n    ^^^^");
        assert_eq!(caret("!bc", 3, 0), "!bc\n   ^");
    }

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let line = format!("!bc send {} --yse", "@u:x ".repeat(20_000));
        let start = line.chars().count() - 5;
        let shown = caret(&line, start, 5);
        let (above, under) = shown.split_once('\n').unwrap();
        assert!(above.starts_with('…') && above.ends_with("--yse"), "{above}");
        assert!(above.chars().count() <= SHOWN + 2, "{above}");
        assert_eq!(under, format!("{}^^^^^", " ".repeat(above.chars().count() - 5)), "under --yse");
        let start_of_long = caret(&"x".repeat(100_000), 0, 100_000);
        assert!(
            start_of_long.starts_with("xxx") && start_of_long.contains("x…\n^^^"),
            "{start_of_long:.200}"
        );
        assert_eq!(start_of_long.chars().count(), SHOWN + 2 + SHOWN / 2);
    }
}
