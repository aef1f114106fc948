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

/// `line` and under it a caret line marking `len` characters from `start` (at least one).
pub fn caret(line: &str, start: usize, len: usize) -> String {
    format!("{line}\n{}{}", " ".repeat(start), "^".repeat(len.max(1)))
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
}
