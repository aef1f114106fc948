use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use fluent_bundle::FluentResource;
use fluent_syntax::ast;

use super::*;

/// Every message and attribute of a catalogue file, with the variables it uses.
fn keys_of(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let resource =
        FluentResource::try_new(text.to_owned()).unwrap_or_else(|(_, errors)| panic!("{errors:?}"));
    let mut keys = BTreeMap::new();
    for entry in resource.entries() {
        if let ast::Entry::Message(message) = entry {
            let mut variables = BTreeSet::new();
            if let Some(pattern) = &message.value {
                variables_in(pattern, &mut variables);
            }
            keys.insert(message.id.name.to_owned(), variables);
            for attribute in &message.attributes {
                let mut variables = BTreeSet::new();
                variables_in(&attribute.value, &mut variables);
                keys.insert(format!("{}.{}", message.id.name, attribute.id.name), variables);
            }
        }
    }
    keys
}

fn variables_in(pattern: &ast::Pattern<&str>, variables: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            variables_in_expression(expression, variables);
        }
    }
}

fn variables_in_expression(expression: &ast::Expression<&str>, variables: &mut BTreeSet<String>) {
    match expression {
        ast::Expression::Select { selector, variants } => {
            variables_in_inline(selector, variables);
            for variant in variants {
                variables_in(&variant.value, variables);
            }
        }
        ast::Expression::Inline(inline) => variables_in_inline(inline, variables),
    }
}

fn variables_in_inline(inline: &ast::InlineExpression<&str>, variables: &mut BTreeSet<String>) {
    match inline {
        ast::InlineExpression::VariableReference { id } => {
            variables.insert(id.name.to_owned());
        }
        ast::InlineExpression::Placeable { expression } => variables_in_expression(expression, variables),
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for argument in &arguments.positional {
                variables_in_inline(argument, variables);
            }
        }
        _ => {}
    }
}

/// Issue 15: no language lacks a key another has, and a key takes the same placeholders in
/// every language.
#[test]
fn every_language_has_every_key_with_the_same_placeholders() {
    let mut problems = Vec::new();
    for (part, files) in CATALOGUE {
        let english = keys_of(files[Language::En.index()]);
        for language in Language::ALL {
            let other = keys_of(files[language.index()]);
            let code = language.code();
            for key in english.keys().filter(|key| !other.contains_key(*key)) {
                problems.push(format!("locales/{code}/{part}.ftl lacks {key}"));
            }
            for key in other.keys().filter(|key| !english.contains_key(*key)) {
                problems.push(format!("locales/en/{part}.ftl lacks {key} (which {code} has)"));
            }
            for (key, variables) in &english {
                if let Some(theirs) = other.get(key).filter(|theirs| *theirs != variables) {
                    problems.push(format!("{part}/{key}: en takes {variables:?}, {code} takes {theirs:?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "the catalogue is incomplete:\n{}", problems.join("\n"));
}

#[test]
fn a_key_is_in_one_part_of_the_catalogue_only() {
    let mut seen = BTreeMap::new();
    for (part, files) in CATALOGUE {
        for key in keys_of(files[Language::En.index()]).into_keys() {
            if let Some(other) = seen.insert(key.clone(), *part) {
                panic!("{key} is in both {other}.ftl and {part}.ftl");
            }
        }
    }
}

#[test]
fn plurals_and_numbers_follow_the_language() {
    assert_eq!(t!(Language::En, "recipients", count = 1), "1 recipient");
    assert_eq!(t!(Language::En, "recipients", count = 2), "2 recipients");
    assert_eq!(t!(Language::En, "recipients", count = 1234567), "1,234,567 recipients");
    assert_eq!(t!(Language::De, "recipients", count = 1), "1 Empfänger");
    assert_eq!(t!(Language::De, "recipients", count = 1000), "1.000 Empfänger");
    assert_eq!(number(Language::De, -1234), "-1.234");
    assert_eq!(number(Language::En, 0), "0");
    assert_eq!(number(Language::En, 999), "999");
    assert_eq!(number(Language::En, 1000), "1,000");
    assert_eq!(number(Language::En, 100_000), "100,000");
    assert_eq!(number(Language::En, 1_234_567), "1,234,567");
    assert_eq!(number(Language::En, -1_234), "-1,234");
}

#[test]
fn a_missing_key_falls_back_to_english_then_to_the_key() {
    assert_eq!(text(Language::De, "no-such-key", &[]), "no-such-key");
    assert_eq!(Language::of(" DE"), Some(Language::De));
    assert_eq!(Language::of("fr"), None);
}

/// Source files whose literals are not for people, and why.
const NOT_FOR_PEOPLE: &[(&str, &str)] = &[
    ("src/base/store/", "SQL and database errors"),
    ("src/base/config/", "config errors, printed by check-config and at start in the terminal"),
    ("src/main.rs", "the command line's output"),
    ("src/lib.rs", "start-up errors in the terminal and log lines"),
    ("src/base/registration.rs", "generate-registration's output"),
    ("src/edge/appservice/", "answers to the homeserver (Matrix error JSON)"),
    ("src/base/telemetry.rs", "metric names and descriptions"),
    ("src/base/matrix/", "requests and the homeserver's own error texts"),
    ("src/base/i18n/", "the catalogue's own code"),
];

/// What marks a line whose literal is not for people (an internal marker, a Matrix ID).
const ALLOWED_MARK: &str = "// not for people";

/// Issue 15: a string literal that reads like a sentence (two words or more) and is not in a log
/// line, an error for the log or a test is a text for people: it belongs in the catalogue.
#[test]
fn no_text_for_people_is_written_outside_the_catalogue() {
    let mut found = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in rust_files(&root.join("src")) {
        let path = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        // A `tests.rs` (and what is in a `tests/` folder beside it) is a test module of its own
        // (`#[cfg(test)] mod tests;` in its parent); a `testing.rs` holds a layer's test fixtures.
        let test_code =
            path.ends_with("/tests.rs") || path.contains("/tests/") || path.ends_with("/testing.rs");
        if NOT_FOR_PEOPLE.iter().any(|(prefix, _)| path.starts_with(prefix)) || test_code {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        for (line, literal) in prose_literals(&source) {
            found.push(format!("{path}:{line}: {literal:?}"));
        }
    }
    assert!(found.is_empty(), "texts for people outside the catalogue (locales/):\n{}", found.join("\n"));
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Macros and calls whose literals go to the log or a developer, never to a Matrix user.
const NOT_FOR_PEOPLE_CALLS: &[&str] = &[
    "tracing::",
    "debug!(",
    "info!(",
    "warn!(",
    "error!(",
    "trace!(",
    "#[error(",
    "panic!(",
    "expect(",
    "unreachable!(",
    "assert",
    "bail!(",
    "context(",
    "#[instrument",
    "#[tracing::instrument",
    "Handled::of(",
];

/// The sentence-like string literals of `source` (line where each starts, text), outside
/// tests, comments, log lines and lines marked [`ALLOWED_MARK`].
fn prose_literals(source: &str) -> Vec<(usize, String)> {
    let sentence = regex::Regex::new(r"[A-Za-z]{2,}[,.:;!?]? +[A-Za-z]{2,}").unwrap();
    let literal = regex::Regex::new(r#"(?s)"((?:[^"\\]|\\.)*)""#).unwrap();
    let skipped = skipped_lines(source);
    // Comments and quote characters out of the way, keeping line numbers.
    let code: Vec<String> =
        source
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("//") {
                    String::new()
                } else {
                    line.replace("'\"'", "' '")
                }
            })
            .collect();
    let code = code.join("\n");
    let mut found = Vec::new();
    for captures in literal.captures_iter(&code) {
        let start = captures.get(0).unwrap().start();
        let line = code[..start].matches('\n').count();
        let text = captures[1].to_owned();
        if !skipped.get(line).copied().unwrap_or(true) && sentence.is_match(&text) {
            found.push((line + 1, text));
        }
    }
    found
}

/// For each line of `source`, whether its literals are not for people: test code (a test
/// module to the end of the file, another item under `#[cfg(test)]` to its closing brace), attributes, log and panic calls (to their
/// closing bracket), marked lines.
fn skipped_lines(source: &str) -> Vec<bool> {
    let mut skipped = Vec::new();
    // The depth at which a skipped item or call started, and whether it has opened yet.
    let mut skipping: Option<(i32, bool)> = None;
    let mut depth = 0i32;
    let lines: Vec<&str> = source.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        // A test module (`#[cfg(test)] mod tests`) ends the file: the rest is test code.
        let next = lines.get(index + 1).map(|next| next.trim_start()).unwrap_or_default();
        let inline_module = (next.starts_with("mod ") || next.starts_with("pub mod ")) && next.ends_with('{');
        if trimmed.starts_with("#[cfg(test)]") && inline_module {
            skipped.resize(lines.len(), true);
            break;
        }
        let starts = trimmed.starts_with("#[cfg(test)]")
            || NOT_FOR_PEOPLE_CALLS.iter().any(|call| trimmed.contains(call));
        if skipping.is_none() && starts {
            skipping = Some((depth, false));
        }
        skipped.push(skipping.is_some() || trimmed.starts_with("#[") || line.contains(ALLOWED_MARK));
        let code = line.split(" //").next().unwrap_or(line);
        let opened = code.matches(['(', '[', '{']).count() as i32;
        depth += opened - code.matches([')', ']', '}']).count() as i32;
        if let Some((start, entered)) = skipping {
            let entered = entered || opened > 0 && !trimmed.starts_with("#[");
            skipping = if entered && depth <= start { None } else { Some((start, entered)) };
        }
    }
    skipped
}

#[test]
fn the_literal_scan_finds_sentences_and_skips_log_lines() {
    let source = r#"
fn a() {
    let x = "You will get no more broadcasts";
    let y = "a text on \
             two lines";
    tracing::info!(
        "a log line that spans"
    );
    let id = "m.room.message";
    let marked = "internal marker text"; // not for people
}
#[cfg(test)]
fn helper() {
    let t = "a test helper text";
}
fn b() { let z = "after the test helper"; }
#[cfg(test)]
mod tests { const T: &str = "a test text"; }
"#;
    let found: Vec<String> =
        prose_literals(source).into_iter().map(|(line, text)| format!("{line} {text}")).collect();
    assert_eq!(
        found,
        [
            "3 You will get no more broadcasts",
            "4 a text on \\\n             two lines",
            "16 after the test helper"
        ]
    );
}
