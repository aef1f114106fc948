//! Polls (MSC3381): the question and answers of a poll broadcast, recipients' answers, the tally
//! with a bar per answer, and the event that ends a poll. Element's poll composer sends the
//! unstable `org.matrix.msc3381.poll.*` form; the stable `m.poll.*` form is read too, and a poll
//! is ended in the form it was started in. A leaf: it imports nothing of the bot but the catalogue.

use ruma::{EventId, OwnedEventId};
use serde_json::{json, Value};

use crate::base::{i18n::Language, message::StoredMessage};

const UNSTABLE_START: &str = "org.matrix.msc3381.poll.start";
const STABLE_START: &str = "m.poll.start";
/// The event types of answers.
pub const RESPONSE_TYPES: [&str; 2] = ["org.matrix.msc3381.poll.response", "m.poll.response"];
/// The longest bar of the tally.
const BAR: usize = 10;

/// A poll as its start event gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub question: String,
    /// (answer ID, text), in order.
    pub answers: Vec<(String, String)>,
    pub max_selections: usize,
    /// Started as `m.poll.start` rather than the unstable type.
    stable: bool,
}

/// How many recipients chose each answer (in the poll's order), and how many answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub counts: Vec<u64>,
    pub answered: u64,
}

impl Poll {
    /// The poll of a broadcast's message, if it is one.
    pub fn of(message: &StoredMessage) -> Option<Poll> {
        match message.event_type.as_str() {
            UNSTABLE_START => Self::unstable(message.content.get(UNSTABLE_START)?),
            STABLE_START => Self::stable(message.content.get("m.poll")?),
            _ => None,
        }
    }

    fn unstable(poll: &Value) -> Option<Poll> {
        let text = |value: &Value| -> Option<String> {
            value.get("org.matrix.msc1767.text").or_else(|| value.get("body"))?.as_str().map(str::to_owned)
        };
        let answers = poll.get("answers")?.as_array()?;
        Some(Poll {
            question: text(poll.get("question")?)?,
            answers: answers
                .iter()
                .filter_map(|answer| Some((id_of(answer, "id")?, text(answer)?)))
                .collect(),
            max_selections: max_selections(poll),
            stable: false,
        })
    }

    fn stable(poll: &Value) -> Option<Poll> {
        let text = |value: &Value| -> Option<String> {
            value.get("m.text")?.as_array()?.first()?.get("body")?.as_str().map(str::to_owned)
        };
        let answers = poll.get("answers")?.as_array()?;
        Some(Poll {
            question: text(poll.get("question")?)?,
            answers: answers
                .iter()
                .filter_map(|answer| Some((id_of(answer, "m.id")?, text(answer)?)))
                .collect(),
            max_selections: max_selections(poll),
            stable: true,
        })
    }

    /// The choices of an answer that count: known answer IDs, each once, the first
    /// `max_selections` of them. Empty: a spoiled answer, which counts for nothing.
    pub fn valid_choices(&self, choices: &[String]) -> Vec<String> {
        let mut valid: Vec<String> = Vec::new();
        for choice in choices {
            if self.answers.iter().any(|(id, _)| id == choice) && !valid.contains(choice) {
                valid.push(choice.clone());
            }
        }
        valid.truncate(self.max_selections);
        valid
    }

    /// The tally of every recipient's last answer.
    pub fn tally(&self, answers: &[Vec<String>]) -> Tally {
        let mut tally = Tally { counts: vec![0; self.answers.len()], answered: 0 };
        for choices in answers {
            let valid = self.valid_choices(choices);
            if valid.is_empty() {
                continue;
            }
            tally.answered += 1;
            for (index, (id, _)) in self.answers.iter().enumerate() {
                if valid.contains(id) {
                    tally.counts[index] += 1;
                }
            }
        }
        tally
    }

    /// [`Poll::tally_text_in`] English.
    pub fn tally_text(&self, tally: &Tally, recipients: i64) -> String {
        self.tally_text_in(Language::En, tally, recipients)
    }

    /// The tally as Markdown lines in `language`: the question, a bar per answer, and how many
    /// answered.
    pub fn tally_text_in(&self, language: Language, tally: &Tally, recipients: i64) -> String {
        let most = tally.counts.iter().copied().max().unwrap_or(0).max(1);
        let mut text = format!("**{}**\n\n", self.question);
        for ((_, answer), count) in self.answers.iter().zip(&tally.counts) {
            let filled = (*count as usize * BAR).div_ceil(most as usize);
            let percent = (count * 100).checked_div(tally.answered).unwrap_or(0);
            text.push_str(&format!(
                "- `{}{}` {count} ({percent}%) {answer}\n",
                "█".repeat(filled),
                "░".repeat(BAR - filled)
            ));
        }
        // Counts as digits only, as ever (English output stays as it was).
        let (answered, recipients) = (tally.answered.to_string(), recipients.to_string());
        text.push('\n');
        text.push_str(&crate::base::i18n::t!(
            language,
            "poll-answered",
            answered = answered,
            recipients = recipients
        ));
        text
    }

    /// The event type and content that end this poll in a DM, where `start` is its copy; its
    /// text in `language`.
    pub fn end_event(&self, language: Language, start: &EventId, tally: &Tally) -> (&'static str, Value) {
        let relation = json!({ "rel_type": "m.reference", "event_id": start });
        let top = self.top_answer(tally);
        let text = match top {
            Some(answer) => crate::base::i18n::t!(language, "poll-ended-top", answer = answer),
            None => crate::base::i18n::t!(language, "poll-ended-nobody"),
        };
        if self.stable {
            let results: serde_json::Map<String, Value> = self
                .answers
                .iter()
                .zip(&tally.counts)
                .map(|((id, _), count)| (id.clone(), json!(count)))
                .collect();
            let content = json!({
                "m.relates_to": relation, "m.text": [{ "body": text }], "m.poll.results": results, "body": text,
            });
            return ("m.poll.end", content);
        }
        let content = json!({
            "m.relates_to": relation, "org.matrix.msc3381.poll.end": {}, "org.matrix.msc1767.text": text,
            "body": text,
        });
        ("org.matrix.msc3381.poll.end", content)
    }

    /// The answer most chose (the first of equals), `None` when nobody answered.
    fn top_answer(&self, tally: &Tally) -> Option<&str> {
        let (index, count) =
            tally.counts.iter().enumerate().max_by_key(|(index, count)| (**count, usize::MAX - index))?;
        (*count > 0).then(|| self.answers[index].1.as_str())
    }
}

/// An answer event: the copy of the poll it answers and the answer IDs chosen, in either form.
pub fn response(event_type: &str, content: &Value) -> Option<(OwnedEventId, Vec<String>)> {
    let relation = content.get("m.relates_to")?;
    if relation.get("rel_type")?.as_str()? != "m.reference" {
        return None;
    }
    let start = EventId::parse(relation.get("event_id")?.as_str()?).ok()?;
    let choices = match event_type {
        "org.matrix.msc3381.poll.response" => {
            content.get("org.matrix.msc3381.poll.response")?.get("answers")?
        }
        "m.poll.response" => content.get("m.selections")?,
        _ => return None,
    };
    let choices =
        choices.as_array()?.iter().filter_map(|choice| choice.as_str().map(str::to_owned)).collect();
    Some((start, choices))
}

fn id_of(answer: &Value, key: &str) -> Option<String> {
    answer.get(key)?.as_str().map(str::to_owned)
}

fn max_selections(poll: &Value) -> usize {
    poll.get("max_selections").and_then(Value::as_u64).unwrap_or(1).max(1) as usize
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A poll as Element's composer sends it.
    pub fn element_poll(max_selections: u64) -> StoredMessage {
        StoredMessage {
            event_type: UNSTABLE_START.into(),
            content: json!({
                "org.matrix.msc3381.poll.start": {
                    "question": { "org.matrix.msc1767.text": "Lunch?", "body": "Lunch?" },
                    "kind": "org.matrix.msc3381.poll.disclosed",
                    "max_selections": max_selections,
                    "answers": [
                        { "id": "pizza", "org.matrix.msc1767.text": "Pizza" },
                        { "id": "salad", "org.matrix.msc1767.text": "Salad" },
                        { "id": "soup", "org.matrix.msc1767.text": "Soup" },
                    ],
                },
                "org.matrix.msc1767.text": "Lunch?\n1. Pizza\n2. Salad\n3. Soup",
            }),
        }
    }

    fn choices(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn element_and_stable_polls_are_read() {
        let poll = Poll::of(&element_poll(1)).unwrap();
        assert_eq!(poll.question, "Lunch?");
        assert_eq!(poll.answers[1], ("salad".into(), "Salad".into()));
        let stable = StoredMessage {
            event_type: STABLE_START.into(),
            content: json!({ "m.poll": {
                "question": { "m.text": [{ "body": "Tea?" }] }, "max_selections": 2,
                "answers": [{ "m.id": "y", "m.text": [{ "body": "Yes" }] }, { "m.id": "n", "m.text": [{ "body": "No" }] }],
            }}),
        };
        let stable = Poll::of(&stable).unwrap();
        assert_eq!((stable.question.as_str(), stable.max_selections, stable.answers.len()), ("Tea?", 2, 2));
        assert!(Poll::of(&StoredMessage::markdown("no poll")).is_none());
    }

    #[test]
    fn answers_count_within_max_selections_and_spoiled_ones_not_at_all() {
        let poll = Poll::of(&element_poll(1)).unwrap();
        assert_eq!(poll.valid_choices(&choices(&["soup", "pizza"])), ["soup"], "the first max_selections");
        assert_eq!(poll.valid_choices(&choices(&["cake", "salad", "salad"])), ["salad"]);
        let tally =
            poll.tally(&[choices(&["pizza"]), choices(&["pizza"]), choices(&["soup"]), choices(&["cake"])]);
        assert_eq!(tally, Tally { counts: vec![2, 0, 1], answered: 3 });
        let text = poll.tally_text(&tally, 5);
        assert!(text.contains("- `██████████` 2 (66%) Pizza"), "{text}");
        assert!(text.contains("- `░░░░░░░░░░` 0 (0%) Salad"), "{text}");
        assert!(text.contains("- `█████░░░░░` 1 (33%) Soup"), "{text}");
        assert!(text.ends_with("3 of 5 answered"), "{text}");
    }

    #[test]
    fn responses_are_read_in_both_forms() {
        let relation = json!({ "rel_type": "m.reference", "event_id": "$start" });
        let unstable =
            json!({ "m.relates_to": relation, "org.matrix.msc3381.poll.response": { "answers": ["salad"] } });
        let (start, chosen) = response("org.matrix.msc3381.poll.response", &unstable).unwrap();
        assert_eq!((start.as_str(), chosen), ("$start", choices(&["salad"])));
        let stable = json!({ "m.relates_to": relation, "m.selections": ["a", "b"] });
        assert_eq!(response("m.poll.response", &stable).unwrap().1, choices(&["a", "b"]));
        assert!(response("m.room.message", &stable).is_none());
    }

    #[test]
    fn the_end_event_refers_to_the_copy_and_names_the_top_answer() {
        let poll = Poll::of(&element_poll(1)).unwrap();
        let start = ruma::event_id!("$copy");
        let tally = Tally { counts: vec![1, 3, 3], answered: 7 };
        let (event_type, content) = poll.end_event(Language::En, start, &tally);
        assert_eq!(event_type, "org.matrix.msc3381.poll.end");
        assert_eq!(content["m.relates_to"]["event_id"], "$copy");
        assert_eq!(content["org.matrix.msc1767.text"], "The poll has ended. Top answer: Salad");
        let (_, nobody) = poll.end_event(Language::En, start, &Tally { counts: vec![0, 0, 0], answered: 0 });
        assert_eq!(nobody["body"], "The poll has ended. Nobody answered.");
        let (_, ended) = poll.end_event(Language::De, start, &tally);
        assert_eq!(ended["body"], "Die Umfrage ist beendet. Häufigste Antwort: Salad");
        let (_, nobody) = poll.end_event(Language::De, start, &Tally { counts: vec![0, 0, 0], answered: 0 });
        assert_eq!(nobody["org.matrix.msc1767.text"], "Die Umfrage ist beendet. Niemand hat geantwortet.");
    }

    #[test]
    fn the_tally_reads_in_german() {
        let poll = Poll::of(&element_poll(1)).unwrap();
        let tally = poll.tally(&[choices(&["pizza"]), choices(&["soup"]), choices(&["pizza"])]);
        let text = poll.tally_text_in(Language::De, &tally, 4);
        assert!(text.starts_with("**Lunch?**\n\n- `██████████` 2 (66%) Pizza\n"), "{text}");
        assert!(text.ends_with("\nGeantwortet: 3 von 4"), "{text}");
    }
}
