//! Every text the bot writes for people, from one Fluent catalogue per language (`locales/`):
//! recipients' notices, answers, previews, progress, status, help, errors, thread titles.
//!
//! [`t!`](crate::t) formats a message of the catalogue in a [`Language`], with named arguments.
//! Plural forms are the catalogue's business (Fluent's plural rules per language), numbers are
//! written the language's way (1,000 / 1.000). A message missing in a language falls back to
//! English; the tests below make sure none is missing and that both languages take the same
//! arguments.

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use fluent_bundle::{concurrent::FluentBundle, FluentArgs, FluentResource, FluentValue};
use serde::Deserialize;

/// The languages the bot speaks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    De,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::De];

    /// The language's code, as in the config (`en`, `de`).
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }

    /// The language of a code (`de`, `DE`, `en`), if the bot speaks it.
    pub fn of(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|language| language.code().eq_ignore_ascii_case(code.trim()))
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The digit group separator of large numbers.
    fn grouping(self) -> char {
        match self {
            Language::En => ',',
            Language::De => '.',
        }
    }
}

/// The catalogue: for each part of the bot, its English and its German file.
pub(crate) const CATALOGUE: &[(&str, [&str; 2])] = &[
    part!("common"),
    part!("commands"),
    part!("help"),
    part!("audience"),
    part!("lifecycle"),
    part!("delivery"),
    part!("recipients"),
    part!("rooms"),
    part!("e2ee"),
];

/// A part of the catalogue: `locales/en/<name>.ftl` and `locales/de/<name>.ftl`.
macro_rules! part {
    ($name:literal) => {
        (
            $name,
            [
                include_str!(concat!("../../../locales/en/", $name, ".ftl")),
                include_str!(concat!("../../../locales/de/", $name, ".ftl")),
            ],
        )
    };
}
use part;

/// An argument of a message: text or a number (numbers choose plural forms).
pub enum Arg {
    Text(String),
    Number(f64),
}

macro_rules! number_arg {
    ($($kind:ty),*) => {$(
        impl From<$kind> for Arg {
            fn from(number: $kind) -> Self {
                Arg::Number(number as f64)
            }
        }
    )*};
}
number_arg!(i32, i64, u32, u64, usize);

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Arg::Text(text.to_owned())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Arg::Text(text)
    }
}

impl From<&String> for Arg {
    fn from(text: &String) -> Self {
        Arg::Text(text.clone())
    }
}

/// The message `key` of the catalogue in `language`, with `args`.
pub fn text(language: Language, key: &str, args: &[(&str, Arg)]) -> String {
    let mut fluent_args = FluentArgs::new();
    for (name, arg) in args {
        let value = match arg {
            Arg::Text(text) => FluentValue::from(text.as_str()),
            Arg::Number(number) => FluentValue::from(*number),
        };
        fluent_args.set(*name, value);
    }
    for bundle in [bundle(language), bundle(Language::En)] {
        let Some(pattern) = bundle.get_message(key).and_then(|message| message.value()) else { continue };
        let mut errors = Vec::new();
        let formatted = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
        if !errors.is_empty() {
            tracing::warn!(
                key,
                language = language.code(),
                ?errors,
                "a catalogue message did not format cleanly"
            );
        }
        return formatted.into_owned();
    }
    tracing::error!(key, "a text is missing from the catalogue");
    key.to_owned()
}

/// Formats a message of the catalogue: `t!(language, "key", name = value, …)`.
macro_rules! t {
    ($language:expr, $key:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::base::i18n::text($language, $key, &[$((stringify!($name), $crate::base::i18n::Arg::from($value))),*])
    };
}
pub(crate) use t;

/// `number` written the way `language` writes it: 1,234 / 1.234.
pub fn number(language: Language, number: i64) -> String {
    let digits = number.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(language.grouping());
        }
        grouped.push(digit);
    }
    if number < 0 {
        grouped.insert(0, '-');
    }
    grouped
}

fn bundle(language: Language) -> &'static FluentBundle<FluentResource> {
    static BUNDLES: OnceLock<Vec<FluentBundle<FluentResource>>> = OnceLock::new();
    &BUNDLES.get_or_init(|| Language::ALL.into_iter().map(build).collect())[language.index()]
}

/// The bundle of `language`: every catalogue file of it, no isolation marks (Matrix clients show
/// them as stray characters), numbers written the language's way.
fn build(language: Language) -> FluentBundle<FluentResource> {
    let id: unic_langid::LanguageIdentifier = language.code().parse().expect("a valid language code");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    bundle.set_use_isolating(false);
    bundle.set_formatter(Some(match language {
        Language::En => |value, _| whole_number(value).map(|n| number(Language::En, n)),
        Language::De => |value, _| whole_number(value).map(|n| number(Language::De, n)),
    }));
    for (part, files) in CATALOGUE {
        let resource = FluentResource::try_new(files[language.index()].to_owned())
            .unwrap_or_else(|(_, errors)| panic!("locales/{}/{part}.ftl: {errors:?}", language.code()));
        bundle
            .add_resource(resource)
            .unwrap_or_else(|errors| panic!("locales/{}/{part}.ftl: {errors:?}", language.code()));
    }
    bundle
}

/// A number argument without fraction, as an integer.
fn whole_number(value: &FluentValue) -> Option<i64> {
    match value {
        FluentValue::Number(number) if number.value.fract() == 0.0 && number.value.abs() < 1e15 => {
            Some(number.value as i64)
        }
        _ => None,
    }
}
